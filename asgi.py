"""What uvicorn serves: `uvicorn asgi:app`."""

from container import Container

from carpool.web.app import create_app

app = create_app(Container())
