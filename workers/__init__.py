"""Workers: the DEALER runtime and the model work (inference, proxies, task2vec, fine-tune)."""
