"""Authorization: who the caller is (``Principal``) and what they may do to a repository or namespace."""
