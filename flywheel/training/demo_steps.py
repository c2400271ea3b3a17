"""The demo's training steps: record expert demonstrations, then compare BC, BC→PPO and PPO from scratch.

``flywheel.demo.STEPS`` includes ``TRAINING_STEPS``. Every run is real and small: a few expert episodes on
``flywheel/Track-v0``, behavioural cloning from them, BC→PPO fine-tuning of the cloned network, and PPO from
scratch with the same PPO budget, each run as an iteration of the demo project (what `flywheel train
--local` does), each evaluated on the same seeded episodes by the one evaluation path.
"""

from __future__ import annotations

from typing import Any

from flywheel.platform.commands._identity import user_session

ENV = {"env_id": "flywheel/Track-v0", "env_kwargs": {"max_steps": 300}}
DEMO_EPISODES = 3
PPO_STEPS = 4096
RUNS: list[tuple[str, str, dict[str, Any], bool]] = [
    # (experiment, template, overrides, uses the demonstrations)
    ("bc", "bc", {"eval_episodes": 3}, True),
    ("bc-ppo", "bc_ppo", {"eval_episodes": 3, "total_timesteps": PPO_STEPS, "n_envs": 1, "n_steps": 512,
                          "batch_size": 128}, True),
    ("ppo-scratch", "ppo", {"eval_episodes": 3, "total_timesteps": PPO_STEPS, "n_envs": 1, "n_steps": 512,
                            "batch_size": 128}, False),
]


def record_expert_demos(demo: Any) -> None:
    """Record expert demonstrations on the track into a dataset (the scripted pure-pursuit driver)."""
    from flywheel.datasets import catalog
    from flywheel.training.demos import record_demos

    dataset_id, root = catalog.new_dataset_folder()
    recording = record_demos(root, ENV["env_id"], ENV["env_kwargs"], episodes=DEMO_EPISODES, seed=0)
    with user_session() as (session, user):
        catalog.register_folder(session, user, dataset_id=dataset_id, root=root, name="track-expert-demos",
                                description="Scripted pure-pursuit expert on flywheel/Track-v0.")
    demo.ids["demos"] = dataset_id
    demo.ids["expert return"] = f"{recording.mean_return:.2f}"
    demo.note(f"track-expert-demos ({dataset_id}): {recording.env_episodes} episodes, {recording.env_steps} "
              f"frames; expert mean return {recording.mean_return:.2f}")


def compare_bc_bc_ppo_ppo(demo: Any) -> None:
    """Train BC and BC→PPO from the demonstrations and PPO from scratch; evaluate all three and compare."""
    from flywheel.training.runner import TrainRequest, train

    expert = float(demo.ids["expert return"])
    rows = []
    for experiment, template, overrides, uses_demos in RUNS:
        with user_session() as (session, user):
            outcome = train(session, user, TrainRequest(
                template=template, project=demo_project(demo), experiment=experiment, overrides={**ENV, **overrides},
                dataset_ids=[demo.ids["demos"]] if uses_demos else [], notes=f"demo: {template}"))
        result = outcome.result
        rows.append((template, result.env_episodes, result.env_steps, result.evaluation.mean_return))
        demo.ids[f"{template} iteration"] = outcome.iteration.id
    demo.note(f"{'template':<8} {'env episodes':>12} {'env steps':>10} {'mean return':>12} {'of expert':>10}")
    for template, episodes, steps, mean_return in rows:
        demo.note(f"{template:<8} {episodes:>12} {steps:>10} {mean_return:>12.2f} {mean_return / expert:>10.0%}")
    demo.note(f"expert   {DEMO_EPISODES:>12} {'':>10} {expert:>12.2f} {1:>10.0%}   (env episodes include the demos)")


def demo_project(demo: Any) -> str:
    """The demo's project (its id, recorded by the project step)."""
    return demo.ids["project"]


TRAINING_STEPS = [record_expert_demos, compare_bc_bc_ppo_ppo]
