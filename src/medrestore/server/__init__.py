"""The local web viewer's HTTP server (``medrestore view``): :mod:`medrestore.server.app` over
:mod:`medrestore.tasks.viewer`, and its page in ``static/index.html``."""
