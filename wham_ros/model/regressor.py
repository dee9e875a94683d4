"""Recurrent regressor and neural initialisation: the two building blocks of every WHAM stage."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: LSTM state: (h, c), each (n_layers, B, hidden)
LSTMState = tuple[torch.Tensor, torch.Tensor]


class Regressor(nn.Module):
    """Unidirectional LSTM over ``concat(input, *inits)`` with one linear head per output.

    Heads are named ``declayer{i}`` and have no activation (contact scores
    included). Between LSTM layers dropout 0.3 acts only in training mode, in
    :meth:`forward` (nn.LSTM's) and in :meth:`step` alike.
    """

    def __init__(self, in_dim: int, hid_dim: int, out_dims: list[int], init_dim: int, n_layers: int) -> None:
        super().__init__()
        self.n_outs = len(out_dims)
        # one layer has nothing between layers to drop (nn.LSTM warns about a non-zero value)
        self.rnn = nn.LSTM(in_dim + init_dim, hid_dim, n_layers, batch_first=True, dropout=0.3 if n_layers > 1 else 0.0)
        for i, d in enumerate(out_dims):
            head = nn.Linear(hid_dim, d)
            nn.init.xavier_uniform_(head.weight, gain=0.01)
            setattr(self, f"declayer{i}", head)
        #: per-layer (input, hidden) gate products with reduced-precision weights (``model.precision``)
        self.fast_cells: list | None = None

    def forward(
        self, x: torch.Tensor, inits: tuple[torch.Tensor, ...], state: LSTMState | None
    ) -> tuple[list[torch.Tensor], torch.Tensor, LSTMState]:
        """x (B, T, in_dim), inits each (B, T, d_i) -> ([head_i (B, T, out_i)], top output (B, T, hid), state)."""
        y, state = self.rnn(torch.cat((x, *inits), dim=-1), state)
        return [getattr(self, f"declayer{i}")(y) for i in range(self.n_outs)], y, state

    def zero_state(self, batch: int, like: torch.Tensor) -> LSTMState:
        """All-zero (h, c) for ``batch`` sequences, on ``like``'s device and dtype."""
        z = like.new_zeros(self.rnn.num_layers, batch, self.rnn.hidden_size)
        return z, z.clone()

    def step(
        self, x: torch.Tensor, inits: tuple[torch.Tensor, ...], state: LSTMState
    ) -> tuple[list[torch.Tensor], torch.Tensor, LSTMState]:
        """One time step, x (B, 1, in_dim): same result as :meth:`forward` with T = 1.

        Written as explicit LSTM cells (gates i, f, g, o, as torch orders them) because
        torch's oneDNN LSTM re-packs its weights on every call, which makes single
        steps about twice as slow as the cell arithmetic itself.
        """
        inp = torch.cat((x, *inits), dim=-1)[:, 0]
        h0, c0 = state
        hs, cs = [], []
        for layer in range(self.rnn.num_layers):
            if self.fast_cells is not None:
                ih, hh = self.fast_cells[layer]
                gates = ih(inp) + hh(h0[layer])
            else:
                w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"weight_hh_l{layer}")
                gates = torch.addmm(getattr(self.rnn, f"bias_ih_l{layer}"), inp, w_ih.t())
                gates = torch.addmm(gates, h0[layer], w_hh.t()) + getattr(self.rnn, f"bias_hh_l{layer}")
            i, f, g, o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c0[layer] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
            cs.append(c)
            # as nn.LSTM does in training: dropout on what a layer passes up, never on its state
            drop = self.training and self.rnn.dropout > 0 and layer < self.rnn.num_layers - 1
            inp = F.dropout(h, self.rnn.dropout, training=True) if drop else h
        y = inp.unsqueeze(1)
        return [getattr(self, f"declayer{i}")(y) for i in range(self.n_outs)], y, (torch.stack(hs), torch.stack(cs))


class NeuralInitialization(nn.Module):
    """Maps a per-track vector to the initial LSTM state (h0, c0).

    (B, 1, in_dim) -> Linear(H) -> ReLU -> Linear(H*L) -> ReLU -> Linear(2*L*H),
    viewed as (B, 2, L, H) and split into h0, c0 of shape (L, B, H).
    """

    def __init__(self, in_dim: int, hid_dim: int, n_layers: int) -> None:
        super().__init__()
        self.n_layers, self.hid_dim = n_layers, hid_dim
        self.linear1 = nn.Linear(in_dim, hid_dim)
        self.linear2 = nn.Linear(hid_dim, hid_dim * n_layers)
        self.linear3 = nn.Linear(hid_dim * n_layers, 2 * n_layers * hid_dim)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> LSTMState:
        out = self.linear3(self.relu(self.linear2(self.relu(self.linear1(x)))))
        out = out.view(x.shape[0], 2, self.n_layers, self.hid_dim).permute(1, 2, 0, 3)
        return out[0].contiguous(), out[1].contiguous()
