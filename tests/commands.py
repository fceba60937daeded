"""Commands the tests send the orchestrator, as the gateway builds them."""

from __future__ import annotations

from typing import Any

from bdisc.app.messages import SubmitDiscovery
from bdisc.discovery.job_spec import DiscoverySpec
from bdisc.params import AnalysisParams


def discovery(
    project: str,
    prefix: str = "",
    analysis: AnalysisParams | None = None,
    **sections: Any,
) -> SubmitDiscovery:
    """A discovery job over ``prefix``; windows without overlap unless ``analysis`` says
    otherwise (fewer windows: faster tests), other sections (cluster, review, ...) as given."""
    spec = DiscoverySpec.from_dict(
        {"analysis": (analysis or AnalysisParams()).as_dict(), **sections}
    )
    return SubmitDiscovery(project=project, prefix=prefix, spec=spec)
