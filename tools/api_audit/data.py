"""What the API audit needs to know that the registry does not: what is not applicable, and why; a small example
for every module class without a rule."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

CONTAINER = "container: fx traces into the modules it holds, each audited on its own"


NN_NOT_APPLICABLE = {
    nn.Module: "the base class: fx traces into a subclass's forward",
    nn.Container: CONTAINER,
    nn.Sequential: CONTAINER,
    nn.ModuleList: CONTAINER,
    nn.ModuleDict: CONTAINER,
    nn.ParameterList: "holds parameters; they are counted where the forward uses them",
    nn.ParameterDict: "holds parameters; they are counted where the forward uses them",
    nn.DataParallel: "multi-device wrapper: analyse the wrapped module",
    nn.RNNBase: "abstract base without a forward of its own; RNN, LSTM and GRU are counted",
    nn.RNNCellBase: "abstract base without a forward of its own; RNNCell, LSTMCell and GRUCell are counted",
}


def _t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _sign(*shape: int) -> torch.Tensor:
    return torch.randint(0, 2, shape).float() * 2 - 1


def _unpool_example(dims: int) -> tuple:
    pool = getattr(nn, f"MaxPool{dims}d")(2, return_indices=True)
    return pool(_t(1, 2, *([4] * dims)))


# A small example for every module class without a rule, to show what fx traces it into.
NN_PROBES: dict[type, Callable[[], tuple[nn.Module, tuple]]] = {
    nn.BCELoss: lambda: (nn.BCELoss(), (torch.rand(4, 3), torch.rand(4, 3))),
    nn.BCEWithLogitsLoss: lambda: (nn.BCEWithLogitsLoss(), (_t(4, 3), torch.rand(4, 3))),
    nn.CTCLoss: lambda: (nn.CTCLoss(), (_t(6, 2, 5).log_softmax(2), torch.randint(1, 5, (2, 3)),
                                        torch.full((2,), 6), torch.full((2,), 3))),
    nn.CosineEmbeddingLoss: lambda: (nn.CosineEmbeddingLoss(), (_t(4, 8), _t(4, 8), _sign(4))),
    nn.CosineSimilarity: lambda: (nn.CosineSimilarity(), (_t(4, 8), _t(4, 8))),
    nn.CrossEntropyLoss: lambda: (nn.CrossEntropyLoss(), (_t(4, 5), torch.randint(0, 5, (4,)))),
    nn.FractionalMaxPool2d: lambda: (nn.FractionalMaxPool2d(2, output_size=3), (_t(1, 2, 8, 8),)),
    nn.FractionalMaxPool3d: lambda: (nn.FractionalMaxPool3d(2, output_size=3), (_t(1, 2, 6, 6, 6),)),
    nn.GaussianNLLLoss: lambda: (nn.GaussianNLLLoss(), (_t(4, 3), _t(4, 3), torch.rand(4, 3) + 0.1)),
    nn.HingeEmbeddingLoss: lambda: (nn.HingeEmbeddingLoss(), (_t(4, 3), _sign(4, 3))),
    nn.HuberLoss: lambda: (nn.HuberLoss(), (_t(4, 3), _t(4, 3))),
    nn.KLDivLoss: lambda: (nn.KLDivLoss(reduction="batchmean"), (_t(4, 3).log_softmax(1), torch.rand(4, 3))),
    nn.L1Loss: lambda: (nn.L1Loss(), (_t(4, 3), _t(4, 3))),
    nn.LinearCrossEntropyLoss: lambda: (nn.LinearCrossEntropyLoss(8, 5), (_t(4, 8), torch.randint(0, 5, (4,)))),
    nn.MSELoss: lambda: (nn.MSELoss(), (_t(4, 3), _t(4, 3))),
    nn.MarginRankingLoss: lambda: (nn.MarginRankingLoss(), (_t(4), _t(4), _sign(4))),
    nn.MaxUnpool1d: lambda: (nn.MaxUnpool1d(2), _unpool_example(1)),
    nn.MaxUnpool2d: lambda: (nn.MaxUnpool2d(2), _unpool_example(2)),
    nn.MaxUnpool3d: lambda: (nn.MaxUnpool3d(2), _unpool_example(3)),
    nn.MultiLabelMarginLoss: lambda: (nn.MultiLabelMarginLoss(), (_t(2, 4), torch.tensor([[3, 0, -1, 1], [0, 1, 2, 3]]))),
    nn.MultiLabelSoftMarginLoss: lambda: (nn.MultiLabelSoftMarginLoss(), (_t(2, 4), torch.randint(0, 2, (2, 4)).float())),
    nn.MultiMarginLoss: lambda: (nn.MultiMarginLoss(), (_t(3, 4), torch.randint(0, 4, (3,)))),
    nn.NLLLoss: lambda: (nn.NLLLoss(), (_t(4, 5).log_softmax(1), torch.randint(0, 5, (4,)))),
    nn.NLLLoss2d: lambda: (nn.NLLLoss2d(), (_t(2, 4, 3, 3).log_softmax(1), torch.randint(0, 4, (2, 3, 3)))),
    nn.PairwiseDistance: lambda: (nn.PairwiseDistance(), (_t(4, 8), _t(4, 8))),
    nn.PoissonNLLLoss: lambda: (nn.PoissonNLLLoss(), (_t(4, 3), torch.rand(4, 3))),
    nn.SmoothL1Loss: lambda: (nn.SmoothL1Loss(), (_t(4, 3), _t(4, 3))),
    nn.SoftMarginLoss: lambda: (nn.SoftMarginLoss(), (_t(4, 3), _sign(4, 3))),
    nn.TripletMarginLoss: lambda: (nn.TripletMarginLoss(), (_t(4, 8), _t(4, 8), _t(4, 8))),
}


F_HELPERS = {"assert_int_or_pair", "boolean_dispatch", "handle_torch_function", "has_torch_function",
             "has_torch_function_unary", "has_torch_function_variadic"}


# Why whole groups of torch functions / Tensor methods are outside FLOP counting. Anything not listed and
# without a rule is reported as uncounted.
NOT_APPLICABLE: dict[str, tuple[str, ...]] = {
    "autograd bookkeeping, no forward computation": (
        "backward", "register_hook", "register_post_accumulate_grad_hook", "retain_grad", "is_inference"),
    "storage, memory layout or device management, no arithmetic": (
        "storage", "untyped_storage", "storage_type", "record_stream", "is_pinned", "is_shared", "is_set_to", "set_",
        "resize", "resize_", "resize_as", "resize_as_", "module_load", "numpy", "ipu", "xpu", "mtia", "to_mkldnn",
        "const_data_ptr", "dim_order", "apply_", "map_", "map2_"),
    "metadata query or predicate on the tensor itself, no arithmetic": (
        "get_device", "is_complex", "is_conj", "is_distributed", "is_neg", "is_nonzero", "is_same_size", "is_signed",
        "hash_tensor"),
    "bit-level split of the float representation (frexp: mantissa and exponent), no arithmetic": ("frexp",),
    "sparse-layout accessor or conversion (indices/values are moved, not computed)": (
        "coalesce", "is_coalesced", "indices", "values", "crow_indices", "col_indices", "ccol_indices", "row_indices",
        "dense_dim", "sparse_dim", "sparse_mask", "sparse_resize_", "sparse_resize_and_clear_", "resize_as_sparse_",
        "to_dense", "to_sparse", "indices_copy", "values_copy", "crow_indices_copy", "col_indices_copy",
        "ccol_indices_copy", "row_indices_copy"),
    "quantized or packed-weight backend kernel (integer/low-precision arithmetic outside the float conventions; "
    "used by torch.ao quantized modules, not by float models)": (
        "dequantize", "int_repr", "q_per_channel_axis", "q_per_channel_scales", "q_per_channel_zero_points", "q_scale",
        "q_zero_point", "qscheme", "quantize_per_channel", "quantize_per_tensor", "quantize_per_tensor_dynamic",
        "quantized_batch_norm", "quantized_gru_cell", "quantized_lstm_cell", "quantized_max_pool1d",
        "quantized_max_pool2d", "quantized_max_pool3d", "quantized_rnn_relu_cell", "quantized_rnn_tanh_cell",
        "fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine", "fused_moving_avg_obs_fake_quant",
        "choose_qparams_optimized", "fbgemm_linear_fp16_weight", "fbgemm_linear_fp16_weight_fp32_activation",
        "fbgemm_linear_int8_weight", "fbgemm_linear_int8_weight_fp32_activation", "fbgemm_linear_quantize_weight",
        "fbgemm_pack_gemm_matrix_fp16", "fbgemm_pack_quantized_matrix"),
    "symbolic-shape arithmetic on Python ints, not tensor work": (
        "sym_float", "sym_int", "sym_ite", "sym_max", "sym_min", "sym_not", "sym_sum"),
    "integer-only operation, no floating-point work": (
        "gcd", "gcd_", "lcm", "lcm_", "bitwise_left_shift", "bitwise_left_shift_", "bitwise_right_shift",
        "bitwise_right_shift_", "bitwise_and_", "bitwise_or_", "bitwise_xor_", "bitwise_not_", "logical_and_",
        "logical_or_", "logical_xor_", "logical_not_", "bincount", "unravel_index"),
    "backend kernel torch calls inside a public op (MIOpen, native_*, SyncBatchNorm's statistics, grid_sampler*): "
    "fx graphs record the public op, which is counted": (
        "miopen_batch_norm", "miopen_convolution", "miopen_convolution_add_relu", "miopen_convolution_relu",
        "miopen_convolution_transpose", "miopen_depthwise_convolution", "miopen_rnn", "native_batch_norm",
        "native_dropout", "native_group_norm", "native_layer_norm", "native_norm", "batch_norm_backward_elemt",
        "batch_norm_backward_reduce", "batch_norm_elemt", "batch_norm_gather_stats",
        "batch_norm_gather_stats_with_counts", "batch_norm_stats", "batch_norm_update_stats", "grid_sampler",
        "grid_sampler_2d", "grid_sampler_3d", "norm_except_dim"),
    "aten entry point behind a counted torch.nn.functional op (F.kl_div, F.ctc_loss, F.embedding_bag...): "
    "fx records the public op": (
        "binary_cross_entropy_with_logits", "cosine_embedding_loss", "ctc_loss", "hinge_embedding_loss", "kl_div",
        "margin_ranking_loss", "poisson_nll_loss", "triplet_margin_loss", "embedding_bag", "feature_alpha_dropout"),
    "context manager, not an op": ("autocast",),
}


_NA_REASON = {name: reason for reason, names in NOT_APPLICABLE.items() for name in names}


PROTOCOL = ("Python protocol method that is no tensor computation (serialisation, printing, interop); the ones the "
            "record and dynamo paths see as Tensor method calls (__add__, __eq__, __setitem__, __bool__...) have rules")
