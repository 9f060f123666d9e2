package wire

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// firstChunkBytes is how much of a large frame is taken and allocated
// before any of its bytes arrive; the rest grows (doubling) as they do.
// Produce requests of the usual size (up to a batch.size of 1 MiB per
// partition) fit in it and are never copied.
const firstChunkBytes = 1 << 20

// frameReader reads one connection's request frames into buffers from
// the server's pool, taking their memory from the server's budget as the
// bytes arrive: a client that announces a 90 MiB frame and sends 10 bytes
// holds one chunk, not 90 MiB. While the budget is used up it does not
// read from the socket, which is what slows a flooding client down.
type frameReader struct {
	r      io.Reader
	max    int32
	pool   *bufferPool
	budget *memoryBudget
	size   [4]byte
}

// chargeFor is what a buffer for n bytes costs the budget: the size class
// the pool allocates for it.
func chargeFor(n int) int64 {
	if c := classFor(n); c >= 0 {
		return int64(1) << (c + minBufferClass)
	}
	return int64(n)
}

// next reads one frame. It returns the frame (from the pool) and what it
// took from the budget; the caller returns both when the frame is done
// with (the charge with budget.releaseFrame, by the frame's size). On error nothing is held. ctx ends a wait for memory.
func (fr *frameReader) next(ctx context.Context) (frame []byte, charge int64, err error) {
	if _, err := io.ReadFull(fr.r, fr.size[:]); err != nil {
		return nil, 0, err
	}
	size := int32(binary.BigEndian.Uint32(fr.size[:]))
	if size < 8 || size > fr.max {
		return nil, 0, fmt.Errorf("%w: size %d, limit %d", errFrameTooLarge, size, fr.max)
	}
	if size <= smallFrameBytes {
		charge = chargeFor(int(size))
		if err := fr.budget.takeSmall(ctx, charge); err != nil {
			return nil, 0, err
		}
		frame = fr.pool.get(int(size))
		if _, err := io.ReadFull(fr.r, frame); err != nil {
			fr.pool.put(frame)
			fr.budget.releaseSmall(charge)
			return nil, 0, err
		}
		return frame, charge, nil
	}
	defer fr.budget.frameDone(fr)
	n := min(int(size), firstChunkBytes)
	charge = chargeFor(n)
	if err := fr.budget.take(ctx, fr, charge); err != nil {
		return nil, 0, err
	}
	frame = fr.pool.get(n)
	read := 0
	for {
		if _, err := io.ReadFull(fr.r, frame[read:n]); err != nil {
			fr.pool.put(frame)
			fr.budget.release(charge)
			return nil, 0, err
		}
		read = n
		if n == int(size) {
			return frame, charge, nil
		}
		n = min(int(size), 2*n)
		more := chargeFor(n) - charge
		if err := fr.budget.take(ctx, fr, more); err != nil {
			fr.pool.put(frame)
			fr.budget.release(charge)
			return nil, 0, err
		}
		charge += more
		grown := fr.pool.get(n)
		copy(grown, frame[:read])
		fr.pool.put(frame)
		frame = grown
	}
}
