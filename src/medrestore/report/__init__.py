"""medrestore.report."""
