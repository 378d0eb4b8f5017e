"""The device's part of a release: the manifest and its checks, the installed release, install.sh.

`manifest` is standard library only: install.sh runs it on a device straight from the bundled
wheel, before anything is installed. Building and deploying bundles is the workstation's: release_tools.
"""
