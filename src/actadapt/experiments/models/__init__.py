"""The networks of the paper's tables; their activations are named and built by :func:`actadapt.get_activation`.

* :mod:`.students`: Table 1's teacher-student MLPs, many trained together as one batched computation;
* :mod:`.lenet`: LeNet5 with batch norm (Table 2);
* :mod:`.textcnn`: Kim's sentence CNN with a hidden FC layer (Table 3);
* :mod:`.urlcnn`: the LeNet5-style URL-sequence CNN and its URL embeddings (Table 4).
"""
