"""``run_training(config, sink, control) -> RunResult``: the whole run, GUI and CLI alike.

Prepare (``prepare.py``: dataset, model, embedding cache, LoRA), then the optimizer, the loop
(micro-batches, clip, step, one status line; checkpoints and samples when due), then finish
(last checkpoint, LoRA files, final samples). A stop before the first step ends the run with
no checkpoint and no LoRA files; a run refused its folder (another run holds it) writes nothing
there. Every failure becomes a ``Failed`` event with a hint; nothing is swallowed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from chroma_studio.base.run_folder import RunFolder
from chroma_studio.config import TrainingConfig
from chroma_studio.protocol.control import Request, TrainingControl
from chroma_studio.protocol.events import (
    CheckpointSaved,
    Finished,
    LogMessage,
    MemoryReport,
    PhaseChanged,
    RunPlanned,
    RunResult,
    Sink,
    StepLogged,
    null_sink,
)
from chroma_studio.training import checkpoint as ckpt
from chroma_studio.training.batches import make_batch
from chroma_studio.training.data import DataOrder, total_steps
from chroma_studio.training.data_parallel import (
    NoMetrics,
    gradient_sync,
    held_gradients,
    rank_share,
    run_batch,
    step_summary,
)
from chroma_studio.training.distributed import RankControl, World, wait_to_be_ended
from chroma_studio.training.encode import Stopped
from chroma_studio.training.errors import TrainingError, describe_failure
from chroma_studio.training.export import FORMATS, export_checkpoint
from chroma_studio.training.hub import DownloadCancelled
from chroma_studio.training.lora import get_lora_state, lora_parameters
from chroma_studio.training.prepare import PreparedRun, prepare_run
from chroma_studio.training.previews import SampleSettings, render_samples
from chroma_studio.training.run_log import RunLog
from chroma_studio.training.schedule import lr_lambda
from chroma_studio.training.slow_steps import SlowStepWatch, device_memory_used
from chroma_studio.training.step import flow_matching_loss

logger = logging.getLogger(__name__)


def run_training(
    config: TrainingConfig, sink: Sink = null_sink, control: TrainingControl | None = None, world: World | None = None
) -> RunResult:
    """Train a LoRA as ``config`` says, reporting to ``sink``; ``control`` stops, pauses, asks.

    ``world``: this process's rank in a data-parallel run (``distributed.py``); rank 0 alone
    writes to the run folder and reports, the others pass a sink that drops everything."""
    control = control or TrainingControl()
    folder = RunFolder(config.run.output_dir)
    log: Sink = RunLog(folder, sink) if world is None or world.main else sink  # rank 0 alone keeps the log
    lock = folder.lock()
    loop: TrainingLoop | None = None
    try:
        prepared = prepare_run(config, folder, lock, log, control, world)
        loop = TrainingLoop(config, prepared, folder, log, control, world)
        return loop.train()
    except (Stopped, DownloadCancelled):
        step = loop.step if loop else 0
        report = log if lock.held else sink
        report(LogMessage("info", "Stopped before the first step: no checkpoint or LoRA was written."))
        report(Finished(step=step, output_dir=config.run.output_dir, lora_path=None, stopped=True))
        return RunResult("stopped", step, config.run.output_dir)
    except Exception as exc:
        if world is not None:
            wait_to_be_ended(exc)  # a peer is gone: the launcher's report names it
        failure = describe_failure(exc, folder.path)
        logger.error("training failed: %s", failure.message)
        logger.debug("%s", failure.traceback)
        (log if lock.held else sink)(failure)  # a run refused the folder leaves nothing in it
        return RunResult("failed", loop.step if loop else 0, config.run.output_dir, failure=failure)
    finally:
        if lock.held and isinstance(log, RunLog):
            log.flush()
        lock.release()


class TrainingLoop:
    """The optimizer and the loop over a prepared run, with what it saves on the way."""

    def __init__(
        self,
        config: TrainingConfig,
        run: PreparedRun,
        folder: RunFolder,
        sink: Sink,
        control: TrainingControl,
        world: World | None = None,
    ) -> None:
        self.config, self.run, self.folder, self.sink, self.control = config, run, folder, sink, control
        # Several processes (distributed.py): rank 0 alone writes; all follow its control, shared
        # once per step; DDP averages the LoRA gradients.
        self.world, self.main = world, world is None or world.main
        if world is not None:
            self.control = RankControl(world, control if world.main else None)
        self.model = gradient_sync(run.transformer, world) if world else run.transformer
        optim = config.optim
        self.params = lora_parameters(run.transformer)
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=optim.learning_rate,
            betas=(optim.adam_beta1, optim.adam_beta2),
            eps=optim.adam_epsilon,
            weight_decay=optim.adam_weight_decay,
        )
        resumed = folder.read_checkpoint_state(run.resume) if run.resume else None
        self.batch, self.batch_note = run_batch(optim.train_batch_size, world, resumed)  # all ranks together
        self.total, self.per_epoch = total_steps(config, run.examples, self.batch)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(optim.lr_scheduler, optim.lr_warmup_steps, self.total)
        )
        use_scaler = run.dtype == torch.float16 and run.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.order = DataOrder(run.examples, self.batch, optim.seed)
        validation = config.validation
        self.sample_settings = SampleSettings(
            prompts=run.sample_prompts,
            negative_prompt=validation.validation_negative_prompt,
            guidance=validation.validation_guidance,
            steps=validation.validation_num_inference_steps,
            resolution=config.sample_resolution,
            seed=validation.validation_seed,
        )
        self.step = 0
        self.saved_step: int | None = None
        self.peak_rss = 0
        self.slow_steps = SlowStepWatch(lambda: device_memory_used(run.device))

    def train(self) -> RunResult:
        config, total = self.config, self.total
        if self.run.resume is not None:
            self.restore(self.run.resume)
        if self.batch_note:
            self.sink(LogMessage("info", self.batch_note))
        start = self.step
        if start >= total:
            self.sink(
                LogMessage(
                    "info",
                    f"The run is already at step {start} of {total}; raise max_train_steps to "
                    "train further. The LoRA files are written again.",
                )
            )
        self.stop_if_not_started()
        trained = sum(p.numel() for p in self.params)
        examples = len(self.run.examples)
        self.sink(RunPlanned(total, start, examples, self.per_epoch, trained, len(self.run.lora_modules)))
        with self.folder.open_metrics(start) if self.main else NoMetrics() as metrics:
            self.phase("training", f"Step {start} of {total}")
            if start == 0:
                self.sample()
            while self.step < total and not self.wait_if_paused():
                requests = self.control.take_requests()
                began = time.perf_counter()
                streamed = self.run.streaming.bytes_copied if self.run.streaming else 0
                lr = self.lr_schedule.get_last_lr()[0]  # the rate this step trains with
                loss, sigmas, epoch = self.optimizer_step()
                self.step += 1
                seconds = time.perf_counter() - began
                metrics.write(
                    {
                        "step": self.step,
                        "loss": loss,
                        "lr": lr,
                        "sigma": sigmas,
                        "seconds": round(seconds, 4),
                        "epoch": epoch,
                        **({"streaming": self.run.streaming.record(streamed)} if self.run.streaming else {}),
                    }
                )
                self.sink(StepLogged(self.step, total, loss, lr, tuple(sigmas), seconds, epoch))
                self.report_memory()
                hint = self.slow_steps.observe(self.step, seconds)
                if hint:
                    self.sink(LogMessage("warning", hint))
                if not torch.isfinite(torch.tensor(loss)):
                    raise TrainingError(
                        f"The loss became {loss} at step {self.step}.",
                        "Lower learning_rate (e.g. to 1e-4), keep gradient checkpointing on, and make sure the "
                        "captions are varied; then resume from the last checkpoint.",
                    )
                every = config.run.checkpointing_steps
                if Request.SAVE in requests or (every and self.step % every == 0):
                    self.save_checkpoint()
                every = config.validation.validation_steps
                if Request.SAMPLE in requests or (every and self.step % every == 0 and self.step < total):
                    self.sample()
            if self.step == start:  # stopped during the first sample pass or a pause
                self.stop_if_not_started()
        return self.finish()

    def optimizer_step(self) -> tuple[float, list[float], int]:
        """One optimizer step over ``gradient_accumulation_steps`` micro-batches: (loss, sigmas, epoch)."""
        config, run = self.config, self.run
        accumulation = config.optim.gradient_accumulation_steps
        total_loss: torch.Tensor | None = None
        sigmas: list[float] = []
        parts: list[tuple[int, torch.Tensor | None]] = []  # per micro-batch: (global size, this rank's sigmas)
        epoch = 0
        for micro in range(accumulation):
            micro_batch = self.order.micro_batch(self.step * accumulation + micro)
            epoch = micro_batch.epoch
            # With several processes this rank trains its share of the micro-batch, weighted by its size.
            mine, weight = rank_share(micro_batch, self.world) if self.world else (micro_batch, 1.0)
            batch, drawn = make_batch(config, run, mine)
            with held_gradients(self.model, micro < accumulation - 1):
                loss = flow_matching_loss(self.model, batch, dtype=run.dtype, t5_padding=config.text.t5_padding)
                loss = loss * weight / accumulation
                ranked = loss * self.world.size if self.world else loss  # DDP averages over the ranks
                (self.scaler.scale(ranked) if self.scaler else ranked).backward()
            total_loss = loss.detach() if total_loss is None else total_loss + loss.detach()
            sigmas.extend(round(s, 5) for s in drawn.tolist())
            parts.append((len(micro_batch.samples), drawn if weight else None))
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if config.optim.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, config.optim.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.lr_schedule.step()
        assert total_loss is not None  # accumulation is at least 1
        if self.world:  # the loss and sigmas of all ranks: one all_reduce
            return (*step_summary(total_loss, parts, self.world), epoch)
        return total_loss.item(), sigmas, epoch  # the step's one host sync

    def finish(self) -> RunResult:
        """The last checkpoint, the LoRA files from it, and the final samples of a finished run."""
        stopped = self.step < self.total
        if self.saved_step != self.step:
            self.save_checkpoint()
        files = [export_checkpoint(self.folder.path, fmt=fmt) for fmt in FORMATS] if self.main else []
        if not stopped:
            self.sample()
        self.phase("finished", "Stopped" if stopped else "Done")
        out, lora = str(self.folder.path), str(files[0]) if files else None
        self.sink(Finished(self.step, out, lora, stopped=stopped, files=tuple(map(str, files))))
        return RunResult("stopped" if stopped else "finished", self.step, out, lora)

    # -- on the way -------------------------------------------------------------------------------
    def stop_if_not_started(self) -> None:
        """A stop before the first step ends the run with nothing written: no checkpoint, no LoRA
        files (a step-0 sample already rendered stays; it shows the untrained model)."""
        self.share_control()
        if self.control.stop_requested and self.step < self.total:
            raise Stopped

    def phase(self, name: str, detail: str = "") -> None:
        logger.info("%s: %s", name, detail)
        self.sink(PhaseChanged(name, detail))

    def wait_if_paused(self) -> bool:
        """Block while paused; True when a stop was requested."""
        self.share_control()
        if self.control.paused:
            self.phase("paused", f"Paused at step {self.step}")
            while self.control.paused and not self.control.stop_requested:
                self.control.wait_while_paused(0.2)
            if not self.control.stop_requested:
                self.sink(LogMessage("info", f"Resumed at step {self.step}."))
            self.phase("training", f"Step {self.step}")
        return self.control.stop_requested

    def share_control(self) -> None:
        """With several processes, every rank takes rank 0's stop, pause and requests (one broadcast)."""
        if isinstance(self.control, RankControl):
            self.control.sync()

    def report_memory(self) -> None:
        device = self.run.device
        if device.type == "cuda":
            self.sink(MemoryReport("cuda", torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()))
        elif device.type == "mps":
            self.sink(MemoryReport("mps", torch.mps.current_allocated_memory(), torch.mps.driver_allocated_memory()))
        else:  # the CPU: this process's resident memory
            import psutil

            rss = psutil.Process().memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            self.sink(MemoryReport(device.type, rss, self.peak_rss))

    def save_checkpoint(self) -> None:
        if not self.main:  # rank 0 alone writes
            self.saved_step = self.step
            return
        self.phase("saving", f"Checkpoint at step {self.step}")
        path = ckpt.save_checkpoint(
            self.folder.path,
            self.step,
            lora_state=get_lora_state(self.run.transformer),
            optimizer=self.optimizer,
            scheduler=self.lr_schedule,
            identity=self.run.identity,
            scaler=self.scaler,
            extra={
                "sigma_distribution": self.run.sigma_distribution,
                "num_processes": self.world.size if self.world else 1,
                "global_batch_size": self.batch,
            },
            keep=self.config.run.checkpoints_total_limit,
        )
        self.saved_step = self.step
        self.sink(CheckpointSaved(self.step, str(path)))
        self.phase("training", f"Step {self.step}")

    def restore(self, checkpoint: Path) -> None:
        loaded = ckpt.restore_checkpoint(
            checkpoint,
            self.run.identity,
            transformer=self.run.transformer,
            optimizer=self.optimizer,
            scheduler=self.lr_schedule,
            scaler=self.scaler,
        )
        self.step = self.saved_step = loaded.step
        self.sink(LogMessage("info", f"Resumed from {loaded.path} at step {loaded.step}."))

    def sample(self) -> None:
        run = self.run
        if not run.sample_embeds or run.vae is None or not self.main:
            return
        self.phase("sampling", f"Samples at step {self.step}")
        for event in render_samples(
            transformer=run.transformer,
            vae=run.vae,
            scheduler=run.scheduler,
            prompt_embeds=run.sample_embeds,
            negative_embeds=run.negative_embeds,
            settings=self.sample_settings,
            step=self.step,
            output_dir=self.folder.path,
            device=run.device,
            dtype=run.dtype,
            should_stop=lambda: (
                self.control.stop_asked if isinstance(self.control, RankControl) else self.control.stop_requested
            ),
        ):
            self.sink(event)
        self.phase("training", f"Step {self.step}")
