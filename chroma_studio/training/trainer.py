"""``run_training(config, sink, control) -> RunResult``: the whole run, GUI and CLI alike.

Order of work: read the dataset, fetch the model, fill the embedding cache (T5, then the VAE),
load and quantize the transformer, add the LoRA, then the loop. Every failure becomes a
``Failed`` event with a hint; nothing is swallowed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from chroma_studio.base.paths import cache_dir
from chroma_studio.base.run_folder import CHECKPOINT_STATE, LOG, METRICS, read_json, read_metrics
from chroma_studio.config import ConfigError, TrainingConfig, errors, save_config
from chroma_studio.config.settings import (
    SIGMA_DISTRIBUTION_WORDS,
    SIGMA_DISTRIBUTIONS,
    SigmaDistribution,
    sigma_keys,
)
from chroma_studio.protocol.control import Request, TrainingControl
from chroma_studio.protocol.events import (
    CheckpointSaved,
    Event,
    Failed,
    Finished,
    LogMessage,
    MemoryReport,
    PhaseChanged,
    RunPlanned,
    RunResult,
    Sink,
    StepLogged,
    log_lines,
    log_text,
    null_sink,
)
from chroma_studio.training import checkpoint as ckpt
from chroma_studio.training.data import DataOrder, DatasetError, MicroBatch, load_examples, total_steps
from chroma_studio.training.embedding_cache import EmbeddingCache, fingerprint_files
from chroma_studio.training.encode import Stopped, cache_latents, cache_text, release_memory
from chroma_studio.training.errors import TrainingError, describe_failure
from chroma_studio.training.export import FORMATS, export_checkpoint
from chroma_studio.training.grad_checkpointing import enable_masked_checkpointing
from chroma_studio.training.hub import DownloadCancelled
from chroma_studio.training.loading import Loader, pick_device, resolve_source, training_dtype
from chroma_studio.training.lora import add_lora, get_lora_state, lora_parameters, set_lora_state
from chroma_studio.training.previews import SampleSettings, render_samples
from chroma_studio.training.quantize import QUANTO, nf4_quantization_config, quantize_transformer
from chroma_studio.training.runlock import RunLock
from chroma_studio.training.schedule import lr_lambda, sample_sigmas
from chroma_studio.training.step import StepInputs, flow_matching_loss
from chroma_studio.training.text import collate_text

logger = logging.getLogger(__name__)


def run_training(config: TrainingConfig, sink: Sink = null_sink, control: TrainingControl | None = None) -> RunResult:
    """Train a LoRA as ``config`` says, reporting to ``sink``; ``control`` stops, pauses, asks."""
    log = RunLog(Path(config.run.output_dir), sink)
    run = _Run(config, log, control or TrainingControl())
    try:
        return run.execute()
    except (Stopped, DownloadCancelled):
        sink(Finished(step=0, output_dir=config.run.output_dir, lora_path=None, stopped=True))
        return RunResult("stopped", 0, config.run.output_dir)
    except Exception as exc:
        failure = describe_failure(exc)
        logger.error("training failed: %s", failure.message)
        logger.debug("%s", failure.traceback)
        sink(failure)
        return RunResult("failed", run.step, config.run.output_dir, failure=failure)
    finally:
        log.flush()
        run.lock.release()


class RunLog:
    """A sink that passes events on and appends the run's log lines to ``log.txt`` in its folder.

    Lines wait until the folder exists (the run creates it after reading the dataset), so a
    reopened run shows the same log the window showed while it ran.
    """

    def __init__(self, folder: Path, sink: Sink) -> None:
        self.path, self.sink = folder / LOG, sink
        self.pending: list[str] = []

    def __call__(self, event: Event) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for level, message in log_lines(event):
            self.pending.append(f"{stamp}  {log_text(level, message)}\n")
        if isinstance(event, Finished | Failed | CheckpointSaved | RunPlanned):
            self.flush()
        self.sink(event)

    def flush(self) -> None:
        if not self.pending or not self.path.parent.is_dir():
            return
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.writelines(self.pending)
        except OSError as exc:  # a log that cannot be written must not end the run
            logger.warning("cannot write %s: %s", self.path, exc)
        self.pending.clear()


def _sample_seed(seed: int, sample: int) -> int:
    """A generator seed per sample (its global index in the seeded data order): the same sample
    draws the same caption dropout, sigma and noise at any batch size, and a resumed run too."""
    return (seed * 0x9E3779B97F4A7C15 + sample * 0xBF58476D1CE4E5B9) % (2**63)


class _Run:
    def __init__(self, config: TrainingConfig, sink: Sink, control: TrainingControl):
        self.config, self.sink, self.control = config, sink, control
        self.out = Path(config.run.output_dir)
        self.lock = RunLock(self.out)
        self.step = 0
        self.saved_step: int | None = None
        self.peak_rss = 0
        self.vae = None
        self.sample_embeds: list[torch.Tensor] = []
        self.negative_embeds: torch.Tensor | None = None
        self.sigma_distribution: SigmaDistribution = config.sigma_distribution

    # -- setup --------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        config = self.config
        problems = errors(config.validate())
        if problems:
            raise ConfigError(problems)
        self.phase("loading", "Reading the dataset")
        self.examples, warnings = load_examples(config)
        for warning in warnings:
            self.sink(LogMessage("warning", warning))
        self.device, self.dtype = pick_device(), training_dtype(config.model.mixed_precision)
        quantization = None
        if config.model.base_model_precision == "nf4-bnb":
            quantization = nf4_quantization_config(self.dtype)
        if self.out.exists() and not self.out.is_dir():
            raise TrainingError(f"The output folder {self.out} is a file, not a folder.", "Choose another output_dir.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
            resume = self.find_resume()
            self.sigma_distribution = self.resumed_sigma_distribution(resume)
            save_config(config.replace(**sigma_keys(self.sigma_distribution)), self.out / "config.json")
        except OSError as exc:
            raise TrainingError(
                f"Cannot write to the output folder {self.out}: {exc.strerror or exc}.",
                "Choose an output folder you can write to (output_dir).",
            ) from exc

        source = resolve_source(config)
        self.source_label = source.label
        self.phase("loading", f"Getting the model: {source.label}")
        loader = Loader(source, self.sink, self.control)
        loader.prepare()
        self.prepare_cache(loader, source)
        self.phase("loading", "Loading the transformer")
        self.transformer = self.build_transformer(loader, quantization)
        self.scheduler_for_samples = loader.scheduler()
        return self.train(resume)

    def phase(self, name: str, detail: str = "") -> None:
        logger.info("%s: %s", name, detail)
        self.sink(PhaseChanged(name, detail))

    def find_resume(self) -> Path | None:
        wanted = self.config.run.resume_from_checkpoint
        if not wanted:
            if ckpt.checkpoint_dirs(self.out):
                raise TrainingError(
                    f"{self.out} already holds checkpoints of an earlier run.",
                    "Resume it (--resume), choose a new output folder, or delete its checkpoints folder.",
                )
            return None
        if wanted == "latest":
            latest = ckpt.latest_checkpoint(self.out)
            if latest is None:
                self.sink(LogMessage("info", f"No checkpoint in {self.out} yet; starting from the beginning."))
            return latest
        return Path(wanted)

    def resumed_sigma_distribution(self, resume: Path | None) -> SigmaDistribution:
        """A resumed run keeps the noise levels it began with; a checkpoint without the record is
        from a version that always trained with SimpleTuner's tail map."""
        wanted = self.config.sigma_distribution
        if resume is None:
            return wanted
        recorded = read_json(resume / CHECKPOINT_STATE).get("sigma_distribution", "simpletuner")
        if recorded not in SIGMA_DISTRIBUTIONS or recorded == wanted:
            return wanted
        self.sink(
            LogMessage(
                "info",
                f"Resuming with the noise levels this run began with: {recorded} "
                f"({SIGMA_DISTRIBUTION_WORDS[recorded]}), not {wanted}.",
            )
        )
        return recorded

    def prepare_cache(self, loader: Loader, source) -> None:
        config = self.config

        def fingerprint(part) -> str:
            if part.kind == "file":
                return fingerprint_files(part.location)
            return fingerprint_files(*loader._local(part))

        root = Path(config.run.cache_dir) if config.run.cache_dir else cache_dir() / "embeddings"
        self.cache = EmbeddingCache(
            root,
            text_model=fingerprint(source.text_encoder) + fingerprint(source.tokenizer),
            vae_model=fingerprint(source.vae),
            dtype=self.dtype,
            max_length=config.text.tokenizer_max_length,
        )
        prompts = self.sample_prompts()
        negative = [config.validation.validation_negative_prompt] if config.validation.validation_guidance > 1 else []
        dropout = [""] if config.text.caption_dropout_probability > 0 else []
        self.phase("caching", "Encoding captions and images")
        common = {"device": self.device, "dtype": self.dtype, "sink": self.sink, "control": self.control}
        self.text_keys = cache_text(
            loader,
            self.cache,
            [e.caption for e in self.examples] + dropout + prompts + negative,
            offload=config.model.offload_during_startup,
            **common,
        )
        latent_keys, self.vae = cache_latents(loader, self.cache, self.examples, **common)
        usable = [i for i, key in enumerate(latent_keys) if key is not None]
        if not usable:
            raise DatasetError("None of the images could be read. Run `chroma-studio dataset check` on the folders.")
        self.examples = [self.examples[i] for i in usable]
        self.latent_keys = [latent_keys[i] for i in usable]
        self.sample_embeds = [self.cache.get("text", self.text_keys[p]) for p in prompts]
        if negative:
            self.negative_embeds = self.cache.get("text", self.text_keys[negative[0]])
        if prompts and self.vae is None:
            self.vae = loader.vae(torch.float32 if self.dtype == torch.float16 else self.dtype)

    def sample_prompts(self) -> list[str]:
        prompts = list(self.config.validation.validation_prompt)
        return prompts or [self.examples[0].caption or "a photo"]

    def build_transformer(self, loader: Loader, quantization) -> torch.nn.Module:
        config = self.config
        transformer = loader.transformer(self.dtype, quantization)
        if config.model.base_model_precision in QUANTO:
            quantize_transformer(transformer, config.model.base_model_precision, self.device)
        elif quantization is None:
            transformer.to(self.device)
        torch.manual_seed(config.optim.seed)  # the LoRA's initial weights
        self.lora_modules = add_lora(
            transformer, config.lora.lora_rank, config.effective_lora_alpha, config.lora.flux_lora_target
        )
        if config.model.gradient_checkpointing:
            enable_masked_checkpointing(transformer)
        release_memory(self.device)
        return transformer.train()

    def identity(self) -> ckpt.Identity:
        lora = self.config.lora
        return ckpt.Identity(self.source_label, lora.lora_rank, self.config.effective_lora_alpha, lora.flux_lora_target)

    # -- the loop ------------------------------------------------------------------------------
    def train(self, resume: Path | None) -> RunResult:
        config, optim = self.config, self.config.optim
        params = lora_parameters(self.transformer)
        self.optimizer = torch.optim.AdamW(
            params,
            lr=optim.learning_rate,
            betas=(optim.adam_beta1, optim.adam_beta2),
            eps=optim.adam_epsilon,
            weight_decay=optim.adam_weight_decay,
        )
        total, per_epoch = total_steps(config, self.examples)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(optim.lr_scheduler, optim.lr_warmup_steps, total)
        )
        use_scaler = self.dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        if resume is not None:
            self.restore(resume)
        start = self.step
        if start >= total:
            self.sink(
                LogMessage(
                    "info",
                    f"The run is already at step {start} of {total}; raise max_train_steps to "
                    "train further. The LoRA files are written again.",
                )
            )
        self.sink(
            RunPlanned(
                total, start, len(self.examples), per_epoch, sum(p.numel() for p in params), len(self.lora_modules)
            )
        )
        order = DataOrder(self.examples, optim.train_batch_size, optim.seed)
        metrics = self.open_metrics(start)
        self.phase("training", f"Step {start} of {total}")
        if start == 0:
            self.sample()
        try:
            while self.step < total and not self.wait_if_paused():
                requests = self.control.take_requests()
                began = time.perf_counter()
                lr = self.lr_schedule.get_last_lr()[0]  # the rate this step trains with
                loss, sigmas, epoch = self.optimizer_step(order)
                self.step += 1
                seconds = time.perf_counter() - began
                metrics.write(
                    json.dumps(
                        {
                            "step": self.step,
                            "loss": loss,
                            "lr": lr,
                            "sigma": sigmas,
                            "seconds": round(seconds, 4),
                            "epoch": epoch,
                        }
                    )
                    + "\n"
                )
                metrics.flush()
                self.sink(StepLogged(self.step, total, loss, lr, tuple(sigmas), seconds, epoch))
                self.report_memory()
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
        finally:
            metrics.close()
        stopped = self.step < total
        if self.saved_step != self.step:
            self.save_checkpoint()
        files = self.export()
        if not stopped:
            self.sample()
        self.phase("finished", "Stopped" if stopped else "Done")
        self.sink(Finished(self.step, str(self.out), str(files[0]), stopped=stopped, files=tuple(map(str, files))))
        return RunResult("stopped" if stopped else "finished", self.step, str(self.out), str(files[0]))

    def wait_if_paused(self) -> bool:
        """Block while paused; True when a stop was requested."""
        if self.control.paused:
            self.phase("paused", f"Paused at step {self.step}")
            while self.control.paused and not self.control.stop_requested:
                self.control.wait_while_paused(0.2)
            if not self.control.stop_requested:
                self.sink(LogMessage("info", f"Resumed at step {self.step}."))
            self.phase("training", f"Step {self.step}")
        return self.control.stop_requested

    def optimizer_step(self, order: DataOrder) -> tuple[float, list[float], int]:
        accumulation = self.config.optim.gradient_accumulation_steps
        total_loss: torch.Tensor | None = None
        sigmas: list[float] = []
        epoch = 0
        for micro in range(accumulation):
            micro_batch = order.micro_batch(self.step * accumulation + micro)
            epoch = micro_batch.epoch
            batch, drawn = self.make_batch(micro_batch)
            loss = (
                flow_matching_loss(self.transformer, batch, dtype=self.dtype, t5_padding=self.config.text.t5_padding)
                / accumulation
            )
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            total_loss = loss.detach() if total_loss is None else total_loss + loss.detach()
            sigmas.extend(round(s, 5) for s in drawn.tolist())
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.config.optim.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(lora_parameters(self.transformer), self.config.optim.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.lr_schedule.step()
        assert total_loss is not None  # accumulation is at least 1
        return total_loss.item(), sigmas, epoch  # the step's one host sync

    def make_batch(self, micro_batch: MicroBatch) -> tuple[StepInputs, torch.Tensor]:
        """Cached latents and text for a micro-batch, each sample with its own seeded draws; and
        the sigmas drawn, on the CPU, for the log."""
        config = self.config
        captions, latents, sigmas, noise = [], [], [], []
        for example_index, sample in zip(micro_batch.examples, micro_batch.samples, strict=True):
            generator = torch.Generator().manual_seed(_sample_seed(config.optim.seed, sample))
            dropped = torch.rand(1, generator=generator).item() < config.text.caption_dropout_probability
            captions.append("" if dropped else self.examples[example_index].caption)
            latent = self.cache.get("latent", self.latent_keys[example_index])
            sigmas.append(
                sample_sigmas(
                    1,
                    generator,
                    distribution=self.sigma_distribution,
                    sigmoid_scale=config.optim.flow_sigmoid_scale,
                    shift=config.optim.flow_schedule_shift,
                )
            )
            noise.append(torch.randn(latent.shape, generator=generator))
            latents.append(latent)
        text, mask = collate_text([self.cache.get("text", self.text_keys[c]) for c in captions])
        drawn, device = torch.cat(sigmas), self.device
        inputs = StepInputs(
            torch.stack(latents).to(device),
            text.to(device),
            mask.to(device),
            drawn.to(device),
            torch.stack(noise).to(device),
        )
        return inputs, drawn

    # -- outputs ---------------------------------------------------------------------------------
    def open_metrics(self, start: int):
        """metrics.jsonl, keeping only the lines up to ``start`` (a resume replays the rest)."""
        from chroma_studio.base.atomic import write_text_atomic

        path = self.out / METRICS
        kept = [json.dumps(r) + "\n" for r in read_metrics(self.out) if r["step"] <= start] if start else []
        write_text_atomic(path, "".join(kept))
        return open(path, "a", encoding="utf-8")

    def report_memory(self) -> None:
        device = self.device
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
        self.phase("saving", f"Checkpoint at step {self.step}")
        path = ckpt.save_checkpoint(
            self.out,
            self.step,
            lora_state=get_lora_state(self.transformer),
            optimizer=self.optimizer,
            scheduler=self.lr_schedule,
            identity=self.identity(),
            scaler=self.scaler,
            extra={"sigma_distribution": self.sigma_distribution},
            keep=self.config.run.checkpoints_total_limit,
        )
        self.saved_step = self.step
        self.sink(CheckpointSaved(self.step, str(path)))
        self.phase("training", f"Step {self.step}")

    def restore(self, path: Path) -> None:
        """Load a checkpoint; it is checked against this model and optimizer before anything changes."""
        loaded = ckpt.load_checkpoint(
            path, self.identity(), live_lora=get_lora_state(self.transformer), optimizer=self.optimizer
        )
        set_lora_state(self.transformer, loaded.lora_state)
        self.optimizer.load_state_dict(loaded.training["optimizer"])
        self.lr_schedule.load_state_dict(loaded.training["scheduler"])
        if self.scaler is not None and loaded.training.get("scaler"):
            self.scaler.load_state_dict(loaded.training["scaler"])
        torch.set_rng_state(loaded.training["rng_cpu"])
        cuda_rng = loaded.training.get("rng_cuda")
        if cuda_rng and torch.cuda.is_available() and len(cuda_rng) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_rng)
        self.step = self.saved_step = loaded.step
        self.sink(LogMessage("info", f"Resumed from {loaded.path} at step {loaded.step}."))

    def export(self) -> list[Path]:
        """The main LoRA file and its kohya copy, from the checkpoint just saved."""
        return [export_checkpoint(self.out, fmt=fmt) for fmt in FORMATS]

    def sample(self) -> None:
        if not self.sample_embeds or self.vae is None:
            return
        validation = self.config.validation
        settings = SampleSettings(
            prompts=tuple(self.sample_prompts()),
            negative_prompt=validation.validation_negative_prompt,
            guidance=validation.validation_guidance,
            steps=validation.validation_num_inference_steps,
            resolution=self.config.sample_resolution,
            seed=validation.validation_seed,
        )
        self.phase("sampling", f"Samples at step {self.step}")
        for event in render_samples(
            transformer=self.transformer,
            vae=self.vae,
            scheduler=self.scheduler_for_samples,
            prompt_embeds=self.sample_embeds,
            negative_embeds=self.negative_embeds,
            settings=settings,
            step=self.step,
            output_dir=self.out,
            device=self.device,
            dtype=self.dtype,
            should_stop=lambda: self.control.stop_requested,
        ):
            self.sink(event)
        self.phase("training", f"Step {self.step}")
