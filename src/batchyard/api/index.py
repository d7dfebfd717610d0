"""The answer at ``/`` for a client that is not a browser (a browser is sent to the
dashboard): what this server is and where its parts live, as plain text, or as JSON for a
client that asks for JSON.

No AWS operation is ``GET /``: AWS Batch's operations all live under ``/v1/`` and the
CloudWatch Logs API is ``POST /`` with an ``X-Amz-Target`` header (a request that carries
one still goes to the API), so this page shadows nothing an AWS client sends.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from batchyard import __version__


def page(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(
            {
                "service": "batchyard",
                "version": __version__,
                "description": "AWS Batch, self-hosted",
                "endpointUrl": base,
                "dashboard": f"{base}/ui",
                "batchApi": f"{base}/v1/",
                "health": f"{base}/healthz",
                "metrics": f"{base}/metrics",
                "help": "batchyard --help",
            }
        )
    return PlainTextResponse(
        f"batchyard {__version__}: AWS Batch, self-hosted. This is its server.\n"
        "\n"
        f"  dashboard      {base}/ui (open it in a browser)\n"
        f"  AWS Batch API  {base}/v1/...\n"
        f"                 point a client's endpoint_url at {base}, e.g.\n"
        f'                 boto3.client("batch", endpoint_url="{base}")\n'
        f"  job output     the CloudWatch Logs API, at the same endpoint_url\n"
        f"  health         {base}/healthz\n"
        f"  metrics        {base}/metrics (Prometheus)\n"
        f"  command line   batchyard --help (with BATCHYARD_ENDPOINT={base})\n"
    )
