"""``python -m meterline.testing.fake_upstream --port N``: serve the fake upstream."""

from meterline.testing.fake_upstream._server import main

if __name__ == "__main__":
    main()
