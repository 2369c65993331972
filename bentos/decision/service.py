"The decision bento: `tradekit.serving.http`'s app, serving the registry's production model (hot reloaded)."

import gc

import bentoml

from tradekit.config import load_settings
from tradekit.serving.http import create_app, open_serving

app = create_app()


@bentoml.service(workers=1, logging={"access": {"enabled": False}}, traffic={"timeout": 10})
@bentoml.asgi_app(app, path="/")
class Decision:
    "/decide, /features, /model, /decisions/stream (SSE), /admin/*; BentoML's /healthz, /readyz, /metrics."

    def __init__(self) -> None:
        # settings from TRADEKIT_PROFILE / TRADEKIT_*; what to serve from TRADEKIT_SERVING_*
        self.serving = app.state.serving = open_serving(load_settings())
        gc.freeze()  # start-up objects out of the collector's sight: shorter pauses, lower p99

    @bentoml.on_shutdown
    def close(self) -> None:
        self.serving.close()
