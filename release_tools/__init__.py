"""The workstation's part of a release: build a self-checking bundle (`fer-edge bundle`, with a wheel of
fer-edge zipped by the standard library) and deploy it to a device over ssh (`fer-edge deploy`).

It plugs into `fer-edge` through the `fer_edge.commands` entry point; edge_runtime never imports it.
The device's part (manifest.py, installed.py, install.sh) stays in edge_runtime.release.
"""
