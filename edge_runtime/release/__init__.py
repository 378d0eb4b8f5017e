"""Release: a self-checking bundle (manifest, bundle, install.sh) and its deployment to a device over ssh.

`manifest` is standard library only: install.sh runs it on a device straight from the bundled
wheel, before anything is installed.
"""
