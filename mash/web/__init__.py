"""The HTTP side of mash: the local server (``_wsgi``) and the apps it serves."""
