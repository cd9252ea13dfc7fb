"""medrestore.models."""
