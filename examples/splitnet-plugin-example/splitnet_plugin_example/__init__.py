"""An example splitnet plug-in: ``scoped_net`` (a small user CNN) and the ``by_scope`` partitioner."""
