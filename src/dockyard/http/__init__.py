"""HTTP surfaces. Only this package imports Starlette."""
