"""cupy.cuda of the emulator: one pretend device, and streams that are always idle (launches are synchronous)."""

from . import runtime


class Device:
    """The current device (there is only device 0)."""

    def __init__(self, device: int | None = None):
        self.id = runtime.getDevice() if device is None else int(device)
        if self.id != 0:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: the emulator has only device 0, not {self.id}")

    def synchronize(self) -> None:
        """Nothing to wait for: every emulated launch has finished when it returns."""


class Stream:
    """A stream whose work is always complete."""

    def synchronize(self) -> None:
        """Nothing to wait for: every emulated launch has finished when it returns."""


_DEFAULT_STREAM = Stream()


def get_current_stream() -> Stream:
    return _DEFAULT_STREAM
