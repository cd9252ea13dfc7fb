"""medrestore.tasks."""
