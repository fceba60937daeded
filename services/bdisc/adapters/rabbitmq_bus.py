"""MessageBus on RabbitMQ (pika). The whole topology is declared here, per stage:

    exchange bdisc (direct)        --stage-->  queue bdisc.<stage>        (quorum, durable,
                                                 x-delivery-limit: poison messages that
                                                 kill consumers are dead-lettered)
    exchange bdisc.retry (direct)  --stage-->  queue bdisc.<stage>.retry  (per-message TTL =
                                                 backoff; expired messages go back to bdisc)
    exchange bdisc.dead (direct)   --stage-->  queue bdisc.<stage>.dead   (quorum, durable)

Messages are persistent and published with confirms. A consumer takes ``prefetch``
messages at a time, runs the handler in a worker thread while the connection keeps
serving heartbeats (a 24-h recording takes many minutes), is woken the moment the
handler returns, and acknowledges only after that. Retryable failures are republished
to the retry queue with a growing TTL; other failures and malformed bodies go to the
dead-letter queue with the error in the ``x-error`` header. ``consume_batches`` hands
the handler the messages delivered now, publishes what it sent on a second confirming
channel with all the confirms awaited once (``publish_many``), then acknowledges the
batch with one multiple ack. A connection lost while
consuming or draining dead letters is raised as ``Retryable`` (callers reconnect with
backoff): pika's exceptions do not leave this module.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from bdisc.errors import ConfigError, InternalError, Retryable, describe, is_retryable
from bdisc.logs import fields, job_context
from bdisc.ports.message_bus import (
    BatchHandler,
    DeadLetter,
    Handler,
    MalformedMessage,
    Message,
)

log = logging.getLogger(__name__)

EXCHANGE, RETRY_EXCHANGE, DEAD_EXCHANGE = "bdisc", "bdisc.retry", "bdisc.dead"
DELIVERY_LIMIT = 5
BATCH_LINGER_S = 0.005  # a batch waits this long for the deliveries sent with its first
NOT_FOUND = 404  # AMQP's reply code for a queue or exchange that is not there
ACCESS_REFUSED = 403  # the user's rights do not cover it: no retry makes that pass
CONFIRM_TIMEOUT_S = 60.0  # publish_many gives up (Retryable) when the broker is this slow


def queue_names(stage: str) -> tuple[str, str, str]:
    return f"bdisc.{stage}", f"bdisc.{stage}.retry", f"bdisc.{stage}.dead"


def queue_arguments(stage: str) -> dict[str, dict[str, Any]]:
    """Each of a stage's queues and its arguments, as ``declare`` makes them (and as
    ``bdisc.service.bus_definitions`` provisions them)."""
    main, retry, dead = queue_names(stage)
    return {
        main: {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
            "x-dead-letter-routing-key": stage,
        },
        retry: {"x-dead-letter-exchange": EXCHANGE, "x-dead-letter-routing-key": stage},
        dead: {"x-queue-type": "quorum"},
    }


def bindings(stage: str) -> list[tuple[str, str]]:
    """(exchange, queue) of a stage, each bound with the stage as its routing key."""
    main, retry, dead = queue_names(stage)
    return [(EXCHANGE, main), (RETRY_EXCHANGE, retry), (DEAD_EXCHANGE, dead)]


@contextlib.contextmanager
def _broker_errors(bus: RabbitBus, doing: str) -> Iterator[None]:
    """pika's errors as our Retryable; the connection is dropped, the next call reconnects."""
    import pika

    try:
        yield
    except pika.exceptions.AMQPError as exc:
        bus._drop_connection()
        raise Retryable(f"message broker lost while {doing}: {exc!r}") from exc


def _raise_if_refused(exc: Exception, where: str) -> None:
    """A publish the broker refuses for the user's rights (ACCESS_REFUSED) is a wrong
    deployment, not an outage: raised at once as such, never retried."""
    import pika

    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == ACCESS_REFUSED:
        raise InternalError(
            f"the broker refused this service's user sending to {where}: {exc.reply_text} "
            "(its rights: python -m bdisc.service.bus_definitions)"
        ) from exc


class RabbitBus:
    def __init__(
        self,
        url: str,
        *,
        prefetch: int = 1,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        accept: Callable[[str, Message], bool] | None = None,
        provisioned: bool = False,
    ) -> None:
        """``accept(stage, message)``: whether to handle a delivered message (its
        ``sender`` set), see ``bdisc.app.senders``; a message it refuses is dropped."""
        import pika

        self.url, self.prefetch = url, prefetch
        self.accept, self.provisioned = accept, provisioned
        # stamped on what this bus publishes; the broker refuses it unless it is the login
        self.user = str(pika.URLParameters(url).credentials.username)
        self.refused = 0  # messages dropped by ``accept``
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self._connection: Any = None
        self._publish_channel: Any = None
        self._batch_channel: Any = None  # publish_many's: confirms counted, not awaited each
        self._batch_confirms = _Confirms()
        self._declared: set[str] = set()
        # Messages a handler publishes while it runs (in its own thread) wait here and are
        # sent by the consumer thread after it succeeded, before the ack: pika connections
        # are not thread-safe, and a failed attempt's messages are dropped with it.
        self._handler_local = threading.local()

    # -- connection -------------------------------------------------------------------
    def _connect(self) -> Any:
        import pika

        if self._connection is None or self._connection.is_closed:
            params = pika.URLParameters(self.url)
            params.heartbeat = 30
            params.blocked_connection_timeout = 60
            try:
                self._connection = pika.BlockingConnection(params)
            except pika.exceptions.AMQPConnectionError as exc:
                raise Retryable(f"message broker unreachable: {exc!r}") from exc
            self._publish_channel = None
            self._batch_channel = None
            self._declared.clear()
        return self._connection

    def _channel(self) -> Any:
        if self._publish_channel is None or self._publish_channel.is_closed:
            self._publish_channel = self._connect().channel()
            self._publish_channel.confirm_delivery()
        return self._publish_channel

    def declare(self, stage: str) -> None:
        """Declare the exchanges and queues of one stage (idempotent). Where the topology
        is provisioned (``provisioned``: the services' users may not configure), only
        check that it is there."""
        if stage in self._declared:
            return
        if self.provisioned:
            self._check_provisioned(stage)
            return
        ch = self._channel()
        for exchange in (EXCHANGE, RETRY_EXCHANGE, DEAD_EXCHANGE):
            ch.exchange_declare(exchange, exchange_type="direct", durable=True)
        for queue, arguments in queue_arguments(stage).items():
            ch.queue_declare(queue, durable=True, arguments=arguments)
        for exchange, queue in bindings(stage):
            ch.queue_bind(queue, exchange, routing_key=stage)
        self._declared.add(stage)

    def _check_provisioned(self, stage: str) -> None:
        import pika

        try:
            ch = self._channel()
            for exchange in (EXCHANGE, RETRY_EXCHANGE, DEAD_EXCHANGE):
                ch.exchange_declare(exchange, passive=True)
            for queue in queue_arguments(stage):
                ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._publish_channel = None
            if exc.reply_code != NOT_FOUND:  # a queue recovering, a broker restarting
                raise Retryable(f"the broker could not show the {stage} topology: {exc!r}") from exc
            raise ConfigError(
                f"the broker has no {stage} topology ({exc.reply_text}): load the "
                "definitions of python -m bdisc.service.bus_definitions"
            ) from exc
        except pika.exceptions.AMQPError as exc:
            self._drop_connection()
            raise Retryable(f"message broker lost while checking {stage}: {exc!r}") from exc
        self._declared.add(stage)

    def _drop_connection(self) -> None:
        """Close the connection (an open one would hold its deliveries) and forget it:
        the next call connects again."""
        with contextlib.suppress(Exception):
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        self._connection = None

    # -- publishing -------------------------------------------------------------------
    def _send(
        self,
        exchange: str,
        stage: str,
        body: bytes,
        headers: dict[str, Any],
        expiration_ms: int | None = None,
    ) -> None:
        import pika

        for attempt in range(3):
            try:
                self.declare(stage)
                props = pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent,
                    content_type="application/json",
                    headers=headers,
                    expiration=str(expiration_ms) if expiration_ms else None,
                    user_id=self.user,
                )
                self._channel().basic_publish(exchange, stage, body, props, mandatory=True)
                return
            except (
                pika.exceptions.AMQPConnectionError,
                pika.exceptions.ChannelClosed,
                pika.exceptions.StreamLostError,
            ) as exc:
                self._drop_connection()  # reconnect and try again
                _raise_if_refused(exc, f"{exchange}/{stage}")
                if attempt == 2:
                    raise Retryable(f"could not publish to {exchange}/{stage}: {exc!r}") from exc
                time.sleep(0.5 * 2**attempt)

    def publish(self, message: Message) -> None:
        outbox = getattr(self._handler_local, "outbox", None)
        if outbox is not None:
            outbox.append(message)
            return
        self._send(
            EXCHANGE,
            message.stage,
            message.to_bytes(),
            {
                "job_id": message.job_id,
                "idempotency_key": message.idempotency_key,
                **message.trace,  # traceparent: seen by broker-side tools too
            },
        )

    def publish_many(self, messages: Sequence[Message]) -> None:
        """Publish them all, then wait for the broker's confirms once (quorum queues
        confirm after their log is written: one wait for the lot, not one per message).
        A lost connection sends them all again on a new one (at least once)."""
        import pika

        outbox = getattr(self._handler_local, "outbox", None)
        if outbox is not None:
            outbox.extend(messages)
            return
        if not messages:
            return
        for attempt in range(3):
            try:
                self._publish_confirmed(messages)
                return
            except (
                pika.exceptions.AMQPConnectionError,
                pika.exceptions.ChannelClosed,
                pika.exceptions.StreamLostError,
            ) as exc:
                self._drop_connection()  # reconnect and try again
                _raise_if_refused(exc, ", ".join(sorted({m.stage for m in messages})))
                if attempt == 2:
                    raise Retryable(f"could not publish {len(messages)} messages: {exc!r}") from exc
                time.sleep(0.5 * 2**attempt)

    def _publish_confirmed(self, messages: Sequence[Message]) -> None:
        import pika

        for stage in sorted({m.stage for m in messages}):
            self.declare(stage)
        connection = self._connect()
        if self._batch_channel is None or self._batch_channel.is_closed:
            channel = connection.channel()
            self._batch_confirms = _Confirms()
            # pika's BlockingChannel waits for each confirm; the channel underneath it
            # (pika's asynchronous Channel, reached through _impl) counts them instead
            channel._impl.confirm_delivery(ack_nack_callback=self._batch_confirms.on_confirm)
            channel._impl.add_on_return_callback(self._batch_confirms.on_return)
            self._batch_channel = channel
        channel, confirms = self._batch_channel, self._batch_confirms
        for message in messages:
            props = pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/json",
                headers={
                    "job_id": message.job_id,
                    "idempotency_key": message.idempotency_key,
                    **message.trace,
                },
                user_id=self.user,
            )
            channel._impl.basic_publish(
                EXCHANGE, message.stage, message.to_bytes(), props, mandatory=True
            )
            confirms.sent()
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while not confirms.settled():
            if channel.is_closed:  # closed by the broker (ACCESS_REFUSED...): say why
                self._batch_channel = None
                reason = getattr(channel._impl, "_closing_reason", None)
                if isinstance(reason, pika.exceptions.ChannelClosed):
                    raise reason
                raise pika.exceptions.ChannelClosed(0, "the broker closed the channel")
            if time.monotonic() > deadline:
                self._batch_channel = None
                raise Retryable(f"the broker did not confirm {len(messages)} messages")
            # short ticks: the confirms are counted in a callback, which does not end
            # process_data_events' wait early (a 0.5 s tick cost 0.5 s per batch)
            connection.process_data_events(time_limit=0.002)
        failed = confirms.take_failures()
        if failed:
            raise Retryable(f"the broker refused {failed} of {len(messages)} messages")

    def publish_raw(self, stage: str, body: bytes) -> None:
        """For tests of malformed input: publish bytes as they are."""
        self._send(EXCHANGE, stage, body, {})

    # -- consuming --------------------------------------------------------------------
    def consume(
        self,
        stage: str,
        handler: Handler,
        *,
        max_messages: int | None = None,
        idle_timeout_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> int:
        with _broker_errors(self, f"consuming {stage}"):
            return self._consume(stage, handler, max_messages, idle_timeout_s, stop)

    def _consume(
        self,
        stage: str,
        handler: Handler,
        max_messages: int | None,
        idle_timeout_s: float,
        stop: threading.Event | None,
    ) -> int:
        self.declare(stage)
        connection = self._connect()
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        main, _, _ = queue_names(stage)
        settled = 0
        try:
            for method, props, body in channel.consume(main, inactivity_timeout=idle_timeout_s):
                if method is None:
                    break  # idle (or time to look at the stop flag)
                self._settle(stage, handler, body, props, connection, method.redelivered)
                channel.basic_ack(method.delivery_tag)  # after the result is written
                settled += 1
                if max_messages is not None and settled >= max_messages:
                    break
                if stop is not None and stop.is_set():
                    break
        finally:
            if channel.is_open:
                channel.cancel()  # unacked prefetched messages return to the queue
                channel.close()
        return settled

    def consume_batches(
        self,
        stage: str,
        handle_batch: BatchHandler,
        handler: Handler,
        *,
        max_batch: int = 32,
        max_messages: int | None = None,
        idle_timeout_s: float = 1.0,
        stop: threading.Event | None = None,
    ) -> int:
        with _broker_errors(self, f"consuming {stage}"):
            return self._consume_batches(
                stage, handle_batch, handler, max_batch, max_messages, idle_timeout_s, stop
            )

    def _consume_batches(
        self,
        stage: str,
        handle_batch: BatchHandler,
        handler: Handler,
        max_batch: int,
        max_messages: int | None,
        idle_timeout_s: float,
        stop: threading.Event | None,
    ) -> int:
        self.declare(stage)
        connection = self._connect()
        channel = connection.channel()
        channel.basic_qos(prefetch_count=max(self.prefetch, max_batch))  # a batch in hand
        main, _, _ = queue_names(stage)
        deliveries = channel.consume(main, inactivity_timeout=idle_timeout_s)
        settled = 0
        try:
            while max_messages is None or settled < max_messages:
                room = max_batch if max_messages is None else min(max_batch, max_messages - settled)
                method, props, body = next(deliveries)
                if method is None:
                    break  # idle (or time to look at the stop flag)
                batch = [(method, props, body)]
                gathered_by = time.monotonic() + BATCH_LINGER_S  # what arrives with it
                while len(batch) < room:
                    if channel.get_waiting_message_count() > 0:
                        batch.append(next(deliveries))
                    elif time.monotonic() < gathered_by:
                        connection.process_data_events(time_limit=0.001)
                    else:
                        break
                self._settle_batch(stage, handle_batch, handler, batch, connection)
                # after the state is written and what it sent is confirmed
                channel.basic_ack(batch[-1][0].delivery_tag, multiple=True)
                settled += len(batch)
                if stop is not None and stop.is_set():
                    break
        finally:
            if channel.is_open:
                channel.cancel()  # unacked prefetched messages return to the queue
                channel.close()
        return settled

    def _settle_batch(
        self,
        stage: str,
        handle_batch: BatchHandler,
        handler: Handler,
        batch: list[tuple[Any, Any, bytes]],
        connection: Any,
    ) -> None:
        """Run the batch handler, then publish what it sent, confirmed once; if it
        raised, settle each message alone (retried or dead-lettered as it would be)."""
        parsed: list[tuple[Any, bytes, Message]] = []
        for method, props, body in batch:
            try:
                message = self._delivered(body, props, method.redelivered)
            except MalformedMessage as exc:
                self._send(DEAD_EXCHANGE, stage, body, {"x-error": exc.message})
                continue
            if self._accepted(stage, message):
                parsed.append((props, body, message))
        if not parsed:
            return
        messages = [m for _, _, m in parsed]
        outcome, outbox = self._run_handler(stage, lambda: handle_batch(messages), "", connection)
        if outcome is None:
            self.publish_many(outbox)
            return
        kind, text = describe(outcome)
        log.warning(
            "a batch failed; its messages are handled one at a time",
            extra=fields(stage=stage, messages=len(parsed), error=f"{kind}: {text}"),
        )
        for props, body, message in parsed:
            self._settle(stage, handler, body, props, connection, message.redelivered)

    def _run_handler(
        self, stage: str, work: Callable[[], None], job_id: str, connection: Any
    ) -> tuple[BaseException | None, list[Message]]:
        """Run ``work`` in a thread while the connection keeps serving heartbeats (and
        is woken the moment it returns); its failure (None: success) and what it sent."""
        outcome: list[BaseException] = []
        outbox: list[Message] = []
        finished = threading.Event()

        def run() -> None:
            self._handler_local.outbox = outbox
            try:
                with job_context(job_id):  # every log line of this message names its job
                    work()
            except BaseException as exc:  # handed to the consumer thread
                outcome.append(exc)
            finally:
                finished.set()
                # wake the I/O loop now, not at its next tick: a fast handler costs
                # milliseconds, not the tick
                connection.add_callback_threadsafe(lambda: None)

        worker = threading.Thread(target=run, name=f"bdisc-{stage}-handler", daemon=True)
        worker.start()
        while not finished.is_set():  # heartbeats keep flowing while the handler runs
            connection.process_data_events(time_limit=1.0)
        worker.join()
        return (outcome[0] if outcome else None), outbox

    def _settle(
        self,
        stage: str,
        handler: Handler,
        body: bytes,
        props: Any,
        connection: Any,
        redelivered: bool = False,
    ) -> None:
        """Run the handler (heartbeats keep flowing); then retry or dead-letter on failure."""
        try:
            message = self._delivered(body, props, redelivered)
        except MalformedMessage as exc:
            self._send(DEAD_EXCHANGE, stage, body, {"x-error": exc.message})
            return
        if not self._accepted(stage, message):
            return
        headers = (props.headers or {}) if props else {}
        job_id = str(headers.get("job_id") or message.job_id)
        failure, outbox = self._run_handler(stage, lambda: handler(message), job_id, connection)
        if failure is None:
            for produced in outbox:
                self.publish(produced)
            return
        kind, text = describe(failure)
        if is_retryable(failure) and message.attempt < self.max_retries:
            delay = min(self.max_backoff_s, self.backoff_s * 2**message.attempt)
            retry = message.retried()
            self._send(
                RETRY_EXCHANGE,
                stage,
                retry.to_bytes(),
                {"job_id": message.job_id, "x-last-error": f"{kind}: {text}"},
                expiration_ms=max(1, int(delay * 1000)),
            )
        else:
            self._send(
                DEAD_EXCHANGE, stage, body, {"job_id": message.job_id, "x-error": f"{kind}: {text}"}
            )

    @staticmethod
    def _delivered(body: bytes, props: Any, redelivered: bool) -> Message:
        """The message as delivered: the body, and what the transport says of it."""
        sender = str(getattr(props, "user_id", None) or "")
        return replace(Message.from_bytes(body), redelivered=redelivered, sender=sender)

    def _accepted(self, stage: str, message: Message) -> bool:
        """Whether ``accept`` lets the handler have it; a refused message is logged and
        dropped (acknowledged, never handled, never dead-lettered into a failure)."""
        if self.accept is None or self.accept(stage, message):
            return True
        self.refused += 1
        log.warning(
            "a message from a sender that may not send it was dropped",
            extra=fields(
                stage=stage,
                kind=str(message.payload.get("kind", "")),
                sender=message.sender or "(none)",
                job=message.job_id,
            ),
        )
        return False

    def _dead_letter_accepted(self, stage: str, body: bytes, props: Any) -> bool:
        """A dead letter keeps its publisher: the stage's consumer that gave up on it, or
        (dead-lettered by the broker) whoever sent it. Checked as the message was."""
        if self.accept is None:
            return True
        try:
            message = Message.from_bytes(body, any_version=True)
        except MalformedMessage:
            message = Message(stage, "", "")  # unreadable: its kind is nobody's
        sender = str(getattr(props, "user_id", None) or "")
        return self._accepted(stage, replace(message, sender=sender))

    def dead_letters(self, stage: str) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        with _broker_errors(self, f"draining dead letters of {stage}"):
            self.declare(stage)
            _, _, dead = queue_names(stage)
            ch = self._channel()
            while True:
                method, props, body = ch.basic_get(dead, auto_ack=True)
                if method is None:
                    return found
                headers = (props.headers or {}) if props else {}
                error = str(headers.get("x-error", "dead-lettered by the broker (delivery limit)"))
                found.append(DeadLetter(body, error, stage))

    def settle_dead_letters(self, stage: str, handle: Callable[[DeadLetter], None]) -> int:
        settled = 0
        with _broker_errors(self, f"settling dead letters of {stage}"):
            self.declare(stage)
            _, _, dead = queue_names(stage)
            ch = self._connect().channel()  # its own: what handle publishes is confirmed apart
            try:
                while True:
                    method, props, body = ch.basic_get(dead, auto_ack=False)
                    if method is None:
                        return settled
                    headers = (props.headers or {}) if props else {}
                    error = str(
                        headers.get("x-error", "dead-lettered by the broker (delivery limit)")
                    )
                    if not self._dead_letter_accepted(stage, body, props):
                        ch.basic_ack(method.delivery_tag)  # forged: it fails nothing
                        continue
                    try:
                        handle(DeadLetter(body, error, stage))
                    except BaseException:
                        ch.basic_nack(method.delivery_tag, requeue=True)
                        raise
                    ch.basic_ack(method.delivery_tag)  # after what it published is confirmed
                    settled += 1
            finally:
                if ch.is_open:
                    ch.close()

    def depth(self, stage: str) -> int:
        """Messages waiting in the stage's work queue (not counting those being handled)."""
        self.declare(stage)
        declared = self._channel().queue_declare(queue_names(stage)[0], passive=True)
        return int(declared.method.message_count)

    def consumers(self, stage: str) -> int:
        """Consumers attached to the stage's work queue: is anyone serving it?"""
        self.declare(stage)
        declared = self._channel().queue_declare(queue_names(stage)[0], passive=True)
        return int(declared.method.consumer_count)

    def purge(self, stage: str) -> None:
        """Empty all queues of a stage (tests and operators)."""
        self.declare(stage)
        for name in queue_names(stage):
            self._channel().queue_purge(name)

    def close(self) -> None:
        import pika

        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):  # the broker closed it first
                self._connection.close()
        self._connection = None


class _Confirms:
    """Publisher confirms of publish_many's channel, counted by delivery tag."""

    def __init__(self) -> None:
        self._last_sent = 0  # delivery tags count the channel's publishes from 1
        self._confirmed_upto = 0
        self._confirmed: set[int] = set()
        self._failures = 0

    def sent(self) -> None:
        self._last_sent += 1

    def on_confirm(self, frame: Any) -> None:
        import pika

        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._failures += 1
        if method.multiple:
            self._confirmed_upto = max(self._confirmed_upto, method.delivery_tag)
        else:
            self._confirmed.add(method.delivery_tag)
        while self._confirmed_upto + 1 in self._confirmed:
            self._confirmed_upto += 1
            self._confirmed.discard(self._confirmed_upto)
        self._confirmed = {t for t in self._confirmed if t > self._confirmed_upto}

    def on_return(self, *_returned: Any) -> None:
        """An unroutable message (no queue bound: declared first, so not expected)."""
        self._failures += 1

    def settled(self) -> bool:
        return self._confirmed_upto >= self._last_sent

    def take_failures(self) -> int:
        failures, self._failures = self._failures, 0
        return failures
