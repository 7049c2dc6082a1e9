//! Typed buffers with lifetimes, on each backend: u32 values round trip; a freed buffer's id is
//! reused and the GPU's bind-group cache forgets it, so an op on the new buffer reads the new
//! contents (a stale bind group would read the old ones); a buffer freed while ops that use it
//! are still recorded stays alive for them; a scope gives back every buffer it allocated.

mod common;

use common::backend_tests;
use dale::backend::linalg::{Axis, LinalgOps, Reduce, ReduceOp};
use dale::backend::{BufferOps, ElementType, Scope};

fn sum_of(len: usize) -> Reduce {
    Reduce {
        rows: 1,
        cols: len,
        axis: Axis::Rows,
        op: ReduceOp::Sum,
        scale: 1.0,
    }
}

backend_tests! {
    fn u32_values_round_trip_through_upload_copy_and_download(side: &Side) {
        let mut be = side.backend();
        let values: Vec<u32> = vec![0, 1, 7, 0x8000_0000, u32::MAX, 12345];
        let src = be.alloc_from::<u32>("keys", &values).unwrap();
        assert_eq!(src.raw().element, ElementType::U32);
        let dst = be.alloc::<u32>("copy", 10).unwrap();
        be.copy(src, 1, dst, 3, 5);
        assert_eq!(be.download(dst, 0, 10).unwrap(), vec![0, 0, 0, 1, 7, 0x8000_0000, u32::MAX, 12345, 0, 0]);
        assert_eq!(be.download(src, 0, 6).unwrap(), values);
    }

    fn a_freed_buffers_id_is_reused_and_ops_read_the_new_contents(side: &Side) {
        let mut be = side.backend();
        let out = be.alloc("sum", 1).unwrap();
        let first = be.alloc_from("values", &[1.0f32, 2.0, 3.0]).unwrap();
        be.reduce(first, out, 0, sum_of(3));
        assert_eq!(be.download(out, 0, 1).unwrap(), vec![6.0]);
        be.free(first);
        let second = be.alloc_from("values", &[10.0f32, 20.0, 30.0]).unwrap();
        assert_eq!(second.id, first.id, "the freed id is taken again");
        be.reduce(second, out, 0, sum_of(3));
        assert_eq!(be.download(out, 0, 1).unwrap(), vec![60.0], "the op read the freed buffer");
    }

    fn a_buffer_freed_after_recording_stays_alive_for_the_recorded_ops(side: &Side) {
        let mut be = side.backend();
        let out = be.alloc("sums", 2).unwrap();
        let first = be.alloc_from("values", &[1.0f32, 2.0, 3.0]).unwrap();
        be.reduce(first, out, 0, sum_of(3));
        be.free(first);
        let second = be.alloc("values", 3).unwrap();
        be.upload(second, 0, &[10.0f32, 20.0, 30.0]).unwrap();
        be.reduce(second, out, 1, sum_of(3));
        assert_eq!(be.download(out, 0, 2).unwrap(), vec![6.0, 60.0]);
    }

    fn a_scope_gives_back_every_buffer_it_allocated(side: &Side) {
        let mut be = side.backend();
        let mut scope = Scope::new();
        let held: Vec<u32> = (0..3)
            .map(|_| scope.alloc::<f32>(be.as_mut(), "scoped", 1000).unwrap().id)
            .collect();
        scope.free(be.as_mut());
        let mut again: Vec<u32> = (0..3)
            .map(|_| be.alloc::<f32>("next", 1000).unwrap().id)
            .collect();
        again.sort();
        assert_eq!(again, held, "the scope's ids are free again");
    }

    fn take_reads_back_after_the_recorded_ops_and_frees_the_buffer_once(side: &Side) {
        let mut be = side.backend();
        let mut scope = Scope::new();
        let kept = scope.alloc_from::<f32>(be.as_mut(), "kept", &[5.0]).unwrap();
        let values = scope.alloc_from(be.as_mut(), "values", &[1.0f32, 2.0, 3.0]).unwrap();
        let sums = scope.alloc::<f32>(be.as_mut(), "sums", 1).unwrap();
        be.reduce(values, sums, 0, sum_of(3));
        assert_eq!(scope.take(be.as_mut(), sums).unwrap(), vec![6.0]);
        scope.free_one(be.as_mut(), values);
        // The scope frees only what it still holds; a second free of a taken buffer would panic.
        assert_eq!(be.download(kept, 0, 1).unwrap(), vec![5.0]);
        scope.free(be.as_mut());
        let ids: Vec<u32> = (0..3).map(|_| be.alloc::<f32>("next", 1).unwrap().id).collect();
        assert!(ids.contains(&kept.id) && ids.contains(&values.id) && ids.contains(&sums.id));
    }
}

#[test]
#[should_panic(expected = "holds F32")]
fn a_buffer_cannot_be_taken_as_another_element_type() {
    let mut be = dale::backend::cpu::CpuBackend::new();
    let buf = be.alloc::<f32>("rates", 4).unwrap();
    let _ = buf.raw().typed::<u32>();
}

#[test]
fn the_cpu_backend_refuses_an_op_that_reads_the_buffer_it_writes() {
    let result = std::panic::catch_unwind(|| {
        let mut be = dale::backend::cpu::CpuBackend::new();
        let buf = be.alloc_from("x", &[1.0f32, 2.0]).unwrap();
        be.reduce(buf, buf, 0, sum_of(2));
    });
    let message = result.expect_err("must panic");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("'x'"), "{text}");
}
