"""medrestore.metrics."""
