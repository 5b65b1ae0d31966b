// ErasureCode: Reed-Solomon coding of D data strips into P parity strips with isa-l, and the
// stripe layout that maps an object's bytes onto its strips.
//
// Code: the (D+P) x D generator matrix is isa-l's gf_gen_cauchy1_matrix over GF(2^8) with the
// polynomial 0x11D: the identity on top (strip i < D is data as is), below it row D+j holds
// 1 / ((D+j) XOR c) in column c. Every D x D submatrix of a Cauchy matrix is invertible, so any D
// of the D+P strips rebuild the others, for every supported D:P.
//
// Layout (as sheepdog's): the object is cut into stripes of D chunks of kChunk bytes; chunk c of
// stripe s is object bytes [s*D*kChunk + c*kChunk, +kChunk) and lives in data strip c at strip
// offset s*kChunk. Parity strip j at strip offset s*kChunk is the code of that stripe's D chunks.
// A strip holds object_size / D bytes. A 4 KiB aligned write touches one data chunk; its
// read-modify-write rewrites one stripe row (kChunk bytes) of every strip.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kelpie::sheep {

class ErasureCode {
 public:
  static constexpr size_t kChunk = 4096;

  ErasureCode(int data, int parity);
  // One shared coder per D:P, built on first use; thread-safe.
  static const ErasureCode& Shared(int data, int parity);
  int data() const { return d_; }
  int parity() const { return p_; }
  int strips() const { return d_ + p_; }
  // The (D+P) x D generator matrix, row-major.
  const std::vector<uint8_t>& matrix() const { return matrix_; }

  // Computes the P parity strips (each len bytes) from the D data strips.
  void Encode(size_t len, std::span<const uint8_t* const> data,
              std::span<uint8_t* const> parity) const;
  // Rebuilds strips `want` from D distinct strips `have` (indexes into 0..D+P-1), each len bytes,
  // have_bufs[i] holding strip have[i]. False if `have` is not D distinct valid strips.
  bool Decode(size_t len, std::span<const int> have, std::span<const uint8_t* const> have_bufs,
              std::span<const int> want, std::span<uint8_t* const> want_bufs) const;

  // Fills strips[w] (resized to len) for every w in `want` from D of the non-empty strips
  // (strips has D+P entries, an empty one is missing). False if fewer than D are present.
  bool Rebuild(std::vector<std::vector<uint8_t>>& strips, size_t len,
               std::span<const int> want) const;

  // Stripe layout. `rows` is a range of stripe rows [row0, row0 + strip_bytes) in strip offsets
  // (multiples of kChunk); the object bytes of those rows are [row0 * D, (row0 + strip_bytes) * D).
  // Splits those object bytes into the D data strips' rows (each strip_bytes long).
  void Split(std::span<const uint8_t> object_rows, std::vector<std::vector<uint8_t>>& strips) const;
  // The inverse: joins the D data strips' rows back into object bytes.
  void Join(const std::vector<std::vector<uint8_t>>& strips, std::span<uint8_t> object_rows) const;

 private:
  int d_, p_;
  std::vector<uint8_t> matrix_;
  std::vector<uint8_t> encode_tables_;
};

}  // namespace kelpie::sheep
