"""`fer-edge run`: the camera daemon (config, capture and watchdog, events, outputs, HTTP, systemd)."""
