"""Test helpers users can run in their own CI: a fake Atlas Cloud server on loopback.

`storyboard.testing.fake_atlas` is the ASGI app, `storyboard.testing.server` runs it
with uvicorn in a thread (`serve()`) or as a command, and
`storyboard.testing.pytest_plugin` offers it as the `fake_atlas` fixture. They need
the `testing` extra (starlette and uvicorn).
"""
