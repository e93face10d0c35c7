"""An example keyword the forward does not accept is an error naming it and the accepted names, on every capture
path (#20.3): fx and dynamo would leave it unused without a word, so a misspelt mask is never applied."""
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from fxflops import trace_flops
from fxflops.errors import FxFlopsError
from test_cli_errors import ROOT, fxflops_cli, slow

TWO = textwrap.dedent("""
    import torch
    import torch.nn as nn

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 32)

        def forward(self, x, mask=None):
            y = self.fc(x)
            return y if mask is None else y * mask
""")
ns: dict = {}
exec(TWO, ns)
Two = ns["Two"]


class Kw(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x, **extra):
        return self.fc(x)


PATHS = ["fx", "record", "dynamo", "auto"]


@pytest.mark.parametrize("capture", PATHS)
def test_misspelt_keyword_is_an_error(capture):
    with pytest.raises(FxFlopsError) as err:
        trace_flops(Two(), {"x": torch.randn(4, 16), "maks": torch.randn(4, 32)}, capture=capture)
    msg = str(err.value)
    assert "'maks'" in msg and "x, mask" in msg and "\n" not in msg


@pytest.mark.parametrize("capture", PATHS)
def test_right_keyword_counts_the_mask(capture):
    r = trace_flops(Two(), {"x": torch.randn(4, 16), "mask": torch.randn(4, 32)}, capture=capture)
    # fc: 4·16·32 = 2048 MACs → 4096 FLOPs, + 128 bias adds, + 128 multiplies by the mask
    assert (r.total_macs, r.total_flops) == (2048, 4096 + 128 + 128)


@pytest.mark.parametrize("capture", PATHS)
def test_catch_all_keywords_are_accepted(capture):
    r = trace_flops(Kw(), {"x": torch.randn(2, 16), "anything": torch.randn(3)}, capture=capture)
    assert r.total_macs == 2 * 16 * 16


@slow
def test_cli_misspelt_keyword(tmp_path):
    (tmp_path / "two.py").write_text(TWO)
    res = fxflops_cli("two.py:Two", "--input", "x=4,16", "--input", "maks=4,32", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fxflops: error: ") and "'maks'" in lines[0], res.stderr
    assert "x, mask" in lines[0]
