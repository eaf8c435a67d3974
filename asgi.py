"""What uvicorn serves: `uvicorn asgi:app`."""

from container import Container

from carpool.app import create_app
from carpool.settings import ConfigurationError

try:
    app = create_app(Container())
except ConfigurationError as exc:
    # One clear line naming the variable, not a traceback through the container.
    raise SystemExit(f"carpool: {exc}") from None
