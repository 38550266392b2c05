from channels.generic.websocket import AsyncWebsocketConsumer


class PingConsumer(AsyncWebsocketConsumer):
    """The host site's own socket: answers ``pong <user>``."""

    async def receive(self, text_data=None, bytes_data=None):
        user = self.scope["user"]
        await self.send(text_data=f"pong {user.get_username() or 'anonymous'}")
