"""Frozen, framework-neutral records of one probed batch.

Everything here is plain Python numbers: the probe reduces tensors on their device and hands
back these records, so no check ever touches a live tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Task = Literal["multiclass", "binary", "multilabel", "regression", "unknown"]


@dataclass(frozen=True)
class TensorStats:
    """Summary of one tensor.

    Attributes:
        shape: tensor shape.
        numel: number of elements.
        mean: mean over the finite elements.
        rms: root mean square over the finite elements.
        std: standard deviation over the finite elements.
        min: smallest finite element.
        max: largest finite element.
        nonfinite: number of NaN or Inf elements.
        zeros: number of elements exactly equal to 0.
    """

    shape: tuple[int, ...]
    numel: int
    mean: float
    rms: float
    std: float
    min: float
    max: float
    nonfinite: int
    zeros: int


@dataclass(frozen=True)
class LayerStats:
    """One recorded layer or functional op, in execution order.

    Attributes:
        index: position in execution order.
        name: module path (``net.3``) or ``fn:<op>#<n>`` for a functional op.
        kind: ``linear``, ``conv``, ``norm``, ``embedding``, ``recurrent`` (LSTM/GRU/RNN: the
            output sequence), ``activation``, ``add``, ``log`` or ``other``.
        op: the module class or function name (``Linear``, ``relu``, ``softmax``...).
        phase: ``model`` (inside the forward pass) or ``loss`` (inside ``loss_fn``).
        inputs: statistics of the first input (the pre-activation for activations).
        output: statistics of the output.
        fan_in: inputs per output unit for linear and conv layers.
        weight_rms: root mean square of the layer's weight (linear and conv layers).
        source_op: the recorded op that produced this record's input, if any.
        saturated: fraction of pre-activations on the flat tails of a sigmoid-like unit.
        dead_units: fraction of ReLU units that are 0 for every example in the batch.
        units: number of units (features or channels) the dead fraction is taken over.
        grad_rms: root mean square of the loss gradient with respect to the output.
        grad_nonfinite: NaN/Inf entries in that gradient.
        is_output: whether this record produced the model's output tensor.
        source_index: index of the record whose output is this record's input, when known
            (for a residual addition: the skip path's producer).
        skip_index: for a residual addition, the record that produced the skip (identity)
            operand: the records between it and the addition form the residual branch.
    """

    index: int
    name: str
    kind: str
    op: str
    phase: str
    inputs: TensorStats | None
    output: TensorStats
    fan_in: int | None = None
    weight_rms: float | None = None
    source_op: str | None = None
    saturated: float | None = None
    dead_units: float | None = None
    units: int | None = None
    grad_rms: float | None = None
    grad_nonfinite: int = 0
    is_output: bool = False
    source_index: int | None = None
    skip_index: int | None = None


@dataclass(frozen=True)
class ParamStats:
    """One parameter tensor.

    Attributes:
        name: dotted name from ``named_parameters``.
        role: ``weight``, ``bias`` or ``norm`` (scale/shift of a normalisation layer).
        shape: parameter shape.
        rms: root mean square of the values.
        grad_rms: root mean square of the loss gradient (None when it gets no gradient).
        grad_nonfinite: NaN/Inf entries in the gradient.
        requires_grad: whether the parameter is trainable.
        weight_decay: optimizer weight decay of its group (0 when no optimizer).
        lr: learning rate of its group (None when no optimizer).
        in_loss_penalty: whether ``loss_fn`` reads this parameter (a hand-written penalty).
    """

    name: str
    role: str
    shape: tuple[int, ...]
    rms: float
    grad_rms: float | None
    grad_nonfinite: int
    requires_grad: bool
    weight_decay: float = 0.0
    lr: float | None = None
    in_loss_penalty: bool = False


@dataclass(frozen=True)
class LossStats:
    """The loss and how it was put together.

    Attributes:
        value: the loss value (NaN when ``loss_fn`` raised).
        kind: ``cross_entropy``, ``nll``, ``bce``, ``bce_logits``, ``mse``, ``l1``, ``huber``,
            ``smooth_l1``, ``kl_div`` or ``custom`` (no library loss seen).
        reduction: ``mean``, ``sum`` or ``none`` when known.
        source: ``module`` (an ``nn.Module`` loss), ``function``, ``expression``, or ``model``
            (the loss the model computed itself from labels in its inputs, e.g. ``out.loss``).
        requires_grad: whether the loss is connected to the graph.
        error: the exception text when ``loss_fn`` raised.
        data_value: the data term when a parameter penalty was added inside ``loss_fn``.
        penalty_value: that penalty's value.
        data_grad_norm: gradient norm of the data term over all parameters.
        penalty_grad_norm: gradient norm of the penalty.
        output_grad_rms: rms of the gradient with respect to the model output.
        final_op: the last autograd node of the loss (``SumBackward0``...).
        label_smoothing: label smoothing of a cross-entropy loss.
        ignore_index: target value a cross-entropy or NLL loss skips.
        elementwise_mean: mean of the library loss's per-element values when it was called
            with ``reduction='none'`` and reduced by hand (an ELBO summed per example).
        library_value: the value the library loss call returned when it reduced to a scalar.
        dropout_off_value: the loss on the same batch with the model's training-mode dropout
            switched off (None when it has none).
        arguments_swapped: the library loss inside ``loss_fn`` received the model output as its
            target and the targets as its prediction (a wrapper written ``(y_pred, y_true)``
            around a loss that takes ``(y_true, y_pred)``, or the other way round).
    """

    value: float
    kind: str
    reduction: str | None
    source: str
    requires_grad: bool
    error: str | None = None
    data_value: float | None = None
    penalty_value: float | None = None
    data_grad_norm: float | None = None
    penalty_grad_norm: float | None = None
    output_grad_rms: float | None = None
    final_op: str | None = None
    label_smoothing: float = 0.0
    ignore_index: int | None = None
    elementwise_mean: float | None = None
    library_value: float | None = None
    dropout_off_value: float | None = None
    arguments_swapped: bool = False


@dataclass(frozen=True)
class TokenLabels:
    """Integer token labels against the token ids the model read, position by position.

    Attributes:
        positions: label positions the loss counts (not ``ignore_index``, not padding), when
            the labels the loss saw line up with the ids one to one.
        copied: of those, positions whose label equals the input token at the same position.
        padded: padding positions (``attention_mask`` 0, or a trailing run of one pad id).
        padded_counted: padding positions whose label the loss counts.
        pad_id: the token id at the padding positions.
        pad_source: ``attention_mask`` or ``trailing run``.
        ignore_index: the label value the loss skips.
    """

    positions: int
    copied: int
    padded: int
    padded_counted: int
    pad_id: int | None
    pad_source: str | None
    ignore_index: int


@dataclass(frozen=True)
class OutputStats:
    """The model output the loss sees.

    Attributes:
        stats: value statistics.
        producer: op that produced it (``softmax``, ``sigmoid``, ``log_softmax``...) or None.
        in_unit_interval: all finite values lie in [0, 1].
        rows_sum_to_one: values are in [0, 1] and sum to 1 along dim 1.
    """

    stats: TensorStats
    producer: str | None
    in_unit_interval: bool
    rows_sum_to_one: bool


@dataclass(frozen=True)
class TargetStats:
    """The targets.

    Attributes:
        stats: value statistics.
        dtype: ``int``, ``float`` or ``bool``.
        integer_valued: all values are whole numbers.
        binary: all values are 0 or 1.
        onehot_rows: every row along dim 1 has exactly one 1 and the rest 0.
        prob_rows: values in [0, 1] summing to 1 along dim 1.
        class_counts: counts per class index for integer targets (ignore_index excluded).
        var: variance of the values.
        mean_sq: mean of the squared values.
    """

    stats: TensorStats
    dtype: str
    integer_valued: bool
    binary: bool
    onehot_rows: bool
    prob_rows: bool
    class_counts: dict[int, int]
    var: float
    mean_sq: float


@dataclass(frozen=True)
class InputStats:
    """The float input batch.

    Attributes:
        stats: value statistics over the whole batch.
        feature_std_min: smallest non-zero per-feature standard deviation (dim 1).
        feature_std_max: largest per-feature standard deviation.
        features: number of features along dim 1.
    """

    stats: TensorStats
    feature_std_min: float
    feature_std_max: float
    features: int


@dataclass(frozen=True)
class OptimizerStats:
    """The optimizer's configuration (never its state).

    Attributes:
        name: optimizer class name.
        adam_family: Adam-like (adaptive per-parameter step).
        decoupled: weight decay is decoupled from the gradient (AdamW style).
        groups: per group: lr, weight_decay and the parameter names it holds.
        maximize: some group steps up the gradient (``maximize=True``).
    """

    name: str
    adam_family: bool
    decoupled: bool
    groups: tuple[dict[str, Any], ...]
    maximize: bool = False


@dataclass(frozen=True)
class StepStats:
    """A few optimizer steps on a copy of the model, on the probed batch.

    Attributes:
        losses: loss before each step and after the last (stops at a non-finite value).
        update_ratios: ||w_1 - w_0|| / ||w_0|| of every weight matrix after the first step.
        optimizer: optimizer used.
        lr: its largest learning rate.
        given: whether the user passed the optimizer (else a default SGD was used).
        closure: whether its step re-evaluates the loss through a closure (LBFGS): it picks its
            own step length, so a large update is not a learning-rate problem by itself.
    """

    losses: tuple[float, ...]
    update_ratios: tuple[float, ...]
    optimizer: str
    lr: float
    given: bool
    closure: bool = False


@dataclass(frozen=True)
class PrecisionStats:
    """A low-precision model that went non-finite, replayed in float32 on a copy.

    Attributes:
        dtype: the low-precision dtype of the parameters (``float16``, ``bfloat16``).
        params: how many parameters have that dtype.
        loss: the first loss of the float32 copy.
        fp32_steps: the same optimizer steps on the float32 copy (None when they could not run).
    """

    dtype: str
    params: int
    loss: float
    fp32_steps: StepStats | None


@dataclass(frozen=True)
class NonfiniteOrigin:
    """Where the first NaN/Inf appeared.

    Attributes:
        where: module path and op (``net.4 / log``) or ``inputs`` / ``targets``.
        op: the op that produced it.
        phase: ``inputs``, ``model``, ``loss`` or ``backward``.
        detail: what its inputs looked like.
    """

    where: str
    op: str
    phase: str
    detail: str


@dataclass(frozen=True)
class RankStats:
    """What the ranks of a ``torch.distributed`` run exchanged at one step: plain numbers.

    Every per-rank field is a tuple indexed by rank. A parameter's entries are NaN where it was
    not measured (a sharded FSDP parameter, a gradient not seen).

    Attributes:
        world: number of ranks.
        step: the observed step.
        wrapper: ``ddp``, ``fsdp`` or ``none`` (a plain module under a process group).
        params: trainable parameters, in the order of the per-parameter tuples.
        param_sums: float64 sum of each parameter after the step.
        param_norms: float64 L2 norm of each parameter after the step.
        param_eps: machine epsilon of each parameter's dtype.
        param_numel: elements of each parameter.
        batch: (sum, L2 norm) of the step's input batch, or None when no batch was seen.
        repeat_period: steps after which the run's first two batches came back in the same order
            (0: not seen).
        first_nonfinite: first step whose loss was non-finite (0: none so far).
        grad_local: a fixed signed projection of the gradient backward produced on the rank,
            before DDP averaged it (summed over the backward passes of the step).
        grad_synced: the same projection of ``.grad`` when the optimizer stepped.
        no_grad: trainable parameters whose ``.grad`` was None when the optimizer stepped.
        never_grad: parameters with no gradient on every rank at every exchange so far.
        exchanges: exchanges so far in which the optimizer had stepped.
        stale: whether stale gradients were seen on the rank (the projections are then mixed).
        buffers: floating-point buffers (BatchNorm running statistics...), in the order of
            ``buffer_sums`` / ``buffer_norms``: float64 sum and norm of each as the step's
            forward began (after DDP's broadcast, when it broadcasts).
    """

    world: int
    step: int
    wrapper: str
    params: tuple[str, ...]
    param_sums: tuple[tuple[float, ...], ...]
    param_norms: tuple[tuple[float, ...], ...]
    param_eps: tuple[float, ...]
    param_numel: tuple[int, ...]
    batch: tuple[tuple[float, float] | None, ...]
    repeat_period: tuple[int, ...]
    first_nonfinite: tuple[int, ...]
    grad_local: tuple[tuple[float, ...], ...]
    grad_synced: tuple[tuple[float, ...], ...]
    no_grad: tuple[tuple[str, ...], ...]
    never_grad: tuple[str, ...] = ()
    exchanges: int = 0
    stale: tuple[bool, ...] = ()
    buffers: tuple[str, ...] = ()
    buffer_sums: tuple[tuple[float, ...], ...] = ()
    buffer_norms: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class RunStats:
    """What the monitor kept of a training run, up to the current step.

    Attributes:
        step: observed steps so far.
        losses: every observed loss, in order (the first is step 1).
        window: steps in the moving average of the dynamics checks.
        update_ratios: ||w_1 - w_0|| / ||w_0|| of every weight matrix on the steps measured
            since the last scheduled step.
        stale_params: parameters that still held the previous step's gradient when backward
            ran again (never zeroed), since the last scheduled step.
        dead_first: each layer's dead-unit share at its first measurement.
        nonfinite_layer: the first layer whose output was non-finite on the step the loss
            turned non-finite (only with ``stop_on_nonfinite``).
        inputs: the input batch of that step.
        ranks: under torch.distributed, what the ranks exchanged at this step.
    """

    step: int
    losses: tuple[float, ...]
    window: int
    update_ratios: tuple[float, ...] = ()
    stale_params: tuple[str, ...] = ()
    dead_first: tuple[tuple[str, float], ...] = ()
    nonfinite_layer: str | None = None
    inputs: TensorStats | None = None
    ranks: RankStats | None = None


@dataclass(frozen=True)
class Trace:
    """Everything measured on one batch.

    Attributes:
        task: inferred (or given) task.
        n_classes: number of classes (multiclass) or outputs (binary/multilabel).
        batch_size: examples in the batch.
        layers: recorded layers and ops in execution order.
        params: parameter records.
        loss: loss record.
        output: model output record (None when the model did not return a tensor).
        targets: target record (None for non-tensor targets).
        inputs: input record (None for non-float inputs).
        optimizer: optimizer record or None.
        nonfinite_origin: first NaN/Inf producer, when there is one.
        notes: warnings the model or the loss raised while probed (shown, not re-raised).
        predicted_gain: mean-field factor per hidden layer on the pre-activation rms, from the
            weights alone (None when the model is outside the theory).
        predicted_initial_loss: mean-field expectation of the first cross-entropy.
        steps: a few optimizer steps on a copy (None when step probing is off).
        precision: a low-precision model that went non-finite, replayed in float32.
        run: a training run's history (filled by the monitor; None for one batch).
        tokens: token labels against token inputs (sequence models fed integer ids).
    """

    task: Task
    n_classes: int | None
    batch_size: int
    layers: tuple[LayerStats, ...]
    params: tuple[ParamStats, ...]
    loss: LossStats
    output: OutputStats | None
    targets: TargetStats | None
    inputs: InputStats | None
    optimizer: OptimizerStats | None
    nonfinite_origin: NonfiniteOrigin | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    predicted_gain: float | None = None
    predicted_initial_loss: float | None = None
    steps: StepStats | None = None
    precision: PrecisionStats | None = None
    run: RunStats | None = None
    tokens: TokenLabels | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON."""
        return asdict(self)
