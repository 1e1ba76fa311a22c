from meterline.cli import app

app()
