"""Real ARM boards on this machine: TVM RPC servers for ARM run under qemu user-mode emulation.

``paths`` says where the set-up lives and what is ready, ``steps`` and ``setup`` build it
(``splitrun setup arm``), ``launch`` starts a board's server. The facts: ../shared/ARM.md.
"""
