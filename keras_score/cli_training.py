"""Training from the `keras-score` command line: the Ctrl-C and checkpoint callbacks, and what `fit`'s errors mean there."""

import math


def fit_from_command_line(model, fit, args, training_error, interrupt_check=None):
    """Runs `fit(callbacks=..., verbose=...)` with the command line's callbacks; returns (final loss, steps taken).

    Args:
        model: the compiled model `fit` trains (its optimizer counts the steps).
        fit: a function of `callbacks` and `verbose` that calls `model.fit`.
        args: the parsed arguments (`verbose`, and `checkpoint` with
            `checkpoint_every` when the command takes them).
        training_error: the exception class raised for a diverging run or
            an unusable checkpoint.
        interrupt_check: a function called after every batch that raises
            `KeyboardInterrupt` for a Ctrl-C Python dropped (in a
            garbage-collector callback), or None.

    Returns:
        `(loss, steps)`: the last epoch's mean loss (NaN when a resumed run
        had no steps left) and the optimizer's step count.

    Raises:
        training_error: if the loss became NaN or Inf, or the checkpoint
            folder holds a checkpoint of another run.
    """
    import keras

    from keras_score.checkpoint import Checkpoint

    callbacks = []
    if interrupt_check:
        callbacks.append(keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: interrupt_check()))
    checkpointing = getattr(args, "checkpoint", None)
    if checkpointing:
        checkpoint = Checkpoint(args.checkpoint, every_steps=args.checkpoint_every)
        callbacks.append(checkpoint)
        if checkpoint.state() is not None:
            print(f"resuming from the checkpoint of step {checkpoint.state()['step']} in {args.checkpoint}", flush=True)
    try:
        history = fit(callbacks=callbacks, verbose=2 if args.verbose else 0)
    except ValueError as error:
        if not checkpointing:
            raise
        raise training_error(f"--checkpoint {args.checkpoint!r}: {error}") from None
    except FloatingPointError as error:
        raise training_error(f"training diverged; try a smaller --learning-rate. {error}") from None
    losses = history.history.get("loss") or [math.nan]
    return losses[-1], int(keras.ops.convert_to_numpy(model.optimizer.iterations))
