// Mount, fio and memory tests measure time and memory on a small machine: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
