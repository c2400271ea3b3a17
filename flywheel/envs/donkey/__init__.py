"""A client of the DonkeyCar Unity simulator (gym-donkeycar compatible protocol, no gym-donkeycar needed).

Example:
    >>> from flywheel.envs.donkey import DonkeySimEnv, SimulatorUnavailable
    >>> DonkeySimEnv.__name__
    'DonkeySimEnv'
"""

from flywheel.envs.donkey.env import DonkeySimEnv
from flywheel.envs.donkey.protocol import DEFAULT_PORT, SimulatorUnavailable

__all__ = ["DEFAULT_PORT", "DonkeySimEnv", "SimulatorUnavailable"]
