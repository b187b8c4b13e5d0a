import gc

gc.disable()  # as in packaging/rootless: no collection passes in a short-lived process

from rootless.fastpath import main_and_exit  # noqa: E402

main_and_exit()
