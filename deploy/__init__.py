"""Deployment: docker-compose support files and the local-stack launcher."""
