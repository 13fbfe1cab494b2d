"""Account management: users, organizations, teams, robots, personal access tokens, repository permissions."""
