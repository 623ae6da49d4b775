import socket


def free_port_block(offsets: tuple[int, ...], start: int = 20000, stop: int = 60000) -> int:
    """A base port such that base + each offset is free on 127.0.0.1."""
    for base in range(start, stop, 7):
        if all(_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError("no free block of ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
