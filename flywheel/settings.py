"""The one settings object. Every path and URL comes from here (env vars `FLYWHEEL_*`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Flywheel's settings, read from `FLYWHEEL_*` environment variables.

    A new user needs none of them: everything lives in `./.flywheel/` of the working directory.

    Example:
        >>> Settings(home=Path("/tmp/fw")).resolved_database_url()
        'sqlite:////tmp/fw/flywheel.db'
    """

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="ignore")

    home: Path = Field(Path(".flywheel"), description="Folder for the database, blobs and datasets.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in `home`.")
    blob_dir: Path | None = Field(None, description="Content-addressed blob store; default `home/blobs`.")
    dataset_dir: Path | None = Field(None, description="Where dataset folders live; default `home/datasets`.")
    api_key: str | None = Field(None, description="The CLI's identity; default the key saved by `user create`.")
    # Jobs (flywheel.jobs): heartbeats, dead-job detection, limits. Seconds unless named otherwise.
    job_heartbeat_s: float = Field(60.0, gt=0, description="A running job's heartbeat interval.")
    job_dead_after_s: float = Field(600.0, gt=0, description="No heartbeat for this long: the job is dead.")
    job_backstop_s: float = Field(86_400.0, gt=0, description="Kill anything running this long without heartbeat.")
    job_poll_s: float = Field(1.0, gt=0, description="How often the scheduler looks at the queue.")
    job_slots: int = Field(2, ge=1, le=1024, description="Jobs one `flywheel worker` runs at once.")
    jobs_per_user: int = Field(2, ge=1, le=1024, description="Jobs of one user running at once.")
    job_max_runtime_s: float = Field(86_400.0, gt=0, description="Default time limit of a job.")
    job_stop_grace_s: float = Field(60.0, ge=0, description="After a graceful stop request, kill after this.")
    job_steps_per_second: float = Field(1000.0, gt=0, description="Training speed assumed by cost estimates.")
    # Runners and worker tokens (flywheel.jobs.runners, flywheel.jobs.tokens).
    ray_address: str | None = Field(None, description="Ray cluster for the `ray` runner (`ray://…` or "
                                    "`host:port`); default a local Ray on 127.0.0.1.")
    skypilot_home_bucket: str | None = Field(None, description="Bucket mounted as the home on SkyPilot VMs "
                                             "(`s3://…`, `gs://…`).")
    api_url: str = Field("http://127.0.0.1:8000/api/v1", description="The API a remote worker talks to.")
    job_token_margin_s: float = Field(3600.0, ge=0, description="A job token outlives its job's time limit by this.")

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside `home`."""
        return self.database_url or f"sqlite:///{self.home.absolute()}/flywheel.db"

    def resolved_blob_dir(self) -> Path:
        """The blob store folder."""
        return (self.blob_dir or self.home / "blobs").absolute()

    def resolved_dataset_dir(self) -> Path:
        """The folder that holds dataset folders."""
        return (self.dataset_dir or self.home / "datasets").absolute()

    @property
    def credentials_path(self) -> Path:
        """Where `flywheel user create` saves the CLI's API key."""
        return self.home.absolute() / "credentials"


def get_settings() -> Settings:
    """The current settings, read from the environment now (cheap; tests change the environment)."""
    return Settings()
