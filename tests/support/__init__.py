"""Support shared by every test suite (imported as `support.<module>`; tests/ is on sys.path through
tests/conftest.py): the repository's paths, polling with deadlines, free ports and the Mosquitto runner,
gate configs on simulators, the demo scene, and a real `gate run` process."""
