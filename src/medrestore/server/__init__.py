"""medrestore.server."""
