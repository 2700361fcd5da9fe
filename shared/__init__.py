"""Infrastructure shared by every service: problems, request ids, config, token verification, wiring.

Nothing here knows about users, sessions, profiles or posts.
"""
