"""The demo's autoresearch step: a short GP + UCB sweep of DQN on the car track, each trial a real training job.

``flywheel.demo.STEPS`` includes ``AUTORESEARCH_STEPS``. Four trials with tiny budgets (a few seconds each on
a quiet core) search the action discretisation and the learning rate, exactly as ``flywheel autoresearch``
does: jobs through the queue, the final evaluation as the reward, the best re-evaluated on other seeds before
it is crowned, the project's ``champion`` alias moved to its iteration.
"""

from __future__ import annotations

from typing import Any

#: The space the demo searches (YAML, as a user writes it for ``--space``).
DEMO_SPACE = """\
n_steer: {type: int, low: 3, high: 9}
learning_rate: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
"""

#: Tiny but real DQN runs: 500 environment steps on a 100-step track, evaluated on 2 episodes.
DEMO_BASE: dict[str, Any] = {"total_timesteps": 500, "learning_starts": 100, "net_arch": [16], "eval_episodes": 2,
                             "env_kwargs": {"max_steps": 100}}
DEMO_TRIALS = 4


def search_hyperparameters(demo: Any) -> None:
    """Search DQN's hyperparameters with autoresearch: 4 training jobs, the champion re-evaluated and crowned."""
    from flywheel.autoresearch.loop import AutoresearchLoop, LoopSettings
    from flywheel.autoresearch.space import SearchSpace
    from flywheel.autoresearch.store import RunMirror
    from flywheel.autoresearch.trials import JobTrials
    from flywheel.platform.commands._identity import user_session

    with user_session() as (_session, user):
        user_id = user.id
    space = SearchSpace.from_yaml(DEMO_SPACE)
    folder = (demo.home / "autoresearch").absolute()
    mirror = RunMirror.open(user_id=user_id, project="drive", results_dir=folder, template="dqn",
                            experiment="autoresearch-dqn", space=space.to_dict(), settings=DEMO_BASE)
    runner = JobTrials(user_id=user_id, project="drive", experiment="autoresearch-dqn", template="dqn",
                       base=DEMO_BASE, timeout_s=300, champion_episodes=4)
    demo.note(f"space: n_steer int 3..9, learning_rate log 1e-4..3e-3; {DEMO_TRIALS} trials; results in {folder}")
    loop = AutoresearchLoop(space=space, runner=runner, results_dir=folder, mirror=mirror,
                            settings=LoopSettings(trials=DEMO_TRIALS, cooldown_s=0, n_startup=2, poll_s=0.2),
                            name=f"autoresearch:{mirror.run_id}", out=demo.note)
    loop.run()
    champ = loop.keeper.champion
    if champ is not None:
        demo.ids["champion"] = mirror.iteration_of(champ.trial) or ""
        demo.note(f"champion alias of drive -> iteration {demo.ids['champion']}; model "
                  f"{folder / 'models' / 'champion' / 'model.zip'}")
    demo.note(f"flywheel project alias drive champion   (plots: {folder / 'plots' / 'index.html'})")


AUTORESEARCH_STEPS = [search_hyperparameters]
