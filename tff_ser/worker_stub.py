"""The gRPC stub tff_ser reaches a TFF C++ worker through, and closes when the worker stops.

Split from :mod:`tff_ser.runtime` (which starts, watches and stops the workers).
"""
from __future__ import annotations

_STUB_CLASS: list = []


def worker_stub(channel):
    """TFF's gRPC stub for a worker, minus its standing connectivity watch.

    TFF 0.87's ``RemoteExecutorGrpcStub`` subscribes to the channel for its
    whole life: a gRPC polling thread per channel that is never closed, so
    every worker restart left a thread polling a dead port (40 restarts, 40
    threads), and a channel closed under its polling thread is a known gRPC
    segfault (grpc/grpc#16290).  This stub
    asks for readiness only when asked (:attr:`is_ready`), so the channel has
    no subscriber once ready and :meth:`close` ends it cleanly.  Disposals
    after close are no-ops (the worker holding those values is gone).
    """
    if not _STUB_CLASS:
        import grpc
        from tensorflow_federated.proto.v0 import executor_pb2_grpc
        from tensorflow_federated.python.core.impl.executors import (
            executors_errors, remote_executor_grpc_stub)

        class WorkerStub(remote_executor_grpc_stub.RemoteExecutorGrpcStub):
            def __init__(self, channel):  # noqa: D107  (no subscription: see worker_stub)
                self._channel = channel
                self._stub = executor_pb2_grpc.ExecutorGroupStub(channel)
                self._closed = False

            def wait_ready(self, timeout: float) -> bool:
                if self._closed:
                    return False
                future = grpc.channel_ready_future(self._channel)
                try:
                    future.result(timeout=timeout)
                    return True
                except grpc.FutureTimeoutError:
                    return False
                finally:
                    future.cancel()  # unsubscribes: no polling thread stays behind

            @property
            def is_ready(self) -> bool:
                return self.wait_ready(0.5)

            def dispose(self, request):
                if not self._closed:
                    return super().dispose(request)

            def dispose_executor(self, request):
                if not self._closed:
                    return super().dispose_executor(request)

            def _open(self):
                # An executor made before its worker was stopped: retryable,
                # as an unreachable worker is, so TFF's context builds a fresh
                # executor (and get_stub a fresh worker) and runs it again.
                if self._closed:
                    raise executors_errors.RetryableError(
                        "this TFF worker was stopped; a fresh one is started")

            def get_executor(self, request):
                self._open()
                return super().get_executor(request)

            def create_value(self, request):
                self._open()
                return super().create_value(request)

            def create_struct(self, request):
                self._open()
                return super().create_struct(request)

            def create_call(self, request):
                self._open()
                return super().create_call(request)

            def create_selection(self, request):
                self._open()
                return super().create_selection(request)

            def compute(self, request):
                self._open()
                return super().compute(request)

            def close(self) -> None:
                if not self._closed:
                    self._closed = True
                    self._channel.close()

        _STUB_CLASS.append(WorkerStub)
    return _STUB_CLASS[0](channel)
