"""medrestore.training."""
