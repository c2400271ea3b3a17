"""Safety test fixtures: the API clients and the CLI runner of tests/api and tests/cli, on both backends."""

from tests.api.conftest import Api, api, app, client, other_api  # noqa: F401
from tests.cli.conftest import Cli, cli  # noqa: F401
