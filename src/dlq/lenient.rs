//! Deserializers that never fail their parent: a field of the wrong JSON type becomes
//! `None` instead of an error, so one odd value never costs a record.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A scalar field read as text whatever its JSON type: strings as they are, numbers and
/// booleans in their JSON spelling; `null`, objects and arrays become `None`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Lenient(pub(super) Option<String>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Lenient, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Lenient, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Lenient, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Visitor methods that turn every scalar into `$value` (the "not what we wanted" case).
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// `Some(T)` when the JSON value is an object; any other value (null, string, array,
/// number) is skipped as `None` instead of failing the parent. `T` is itself lenient, so an
/// object of an unexpected inner shape still deserializes.
#[derive(Debug)]
pub(super) struct MaybeObject<T>(pub(super) Option<T>);

impl<T> Default for MaybeObject<T> {
    fn default() -> Self {
        MaybeObject(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MaybeObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MaybeObject<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(|t| MaybeObject(Some(t)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeObject(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            scalars_are!(MaybeObject(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array element that is made into something else once parsed: [`MaybeArrayOf`]'s
/// elements.
pub(super) trait Make: Send {
    /// What an element becomes.
    type Made: Send;
    /// The element at `index` of its array, made.
    fn make(self, index: usize) -> Self::Made;
}

/// `Some` of every element made (see [`Make`]) for a JSON array, `None` for anything else.
///
/// A long array is made on a second thread while the parser goes on through the rest of
/// it: elements are handed over in runs of [`RUN`], so what one element costs after it is
/// parsed (for a dead letter, parsing its body) overlaps the parse of the next ones
/// instead of following the whole parse.
#[derive(Debug)]
pub(super) struct MaybeArrayOf<T: Make>(pub(super) Option<Vec<T::Made>>);

/// How many elements [`MaybeArrayOf`] hands over at a time; a shorter array stays on the
/// parser's thread.
pub(super) const RUN: usize = 128;

impl<'de, T: Make + Deserialize<'de>> Deserialize<'de> for MaybeArrayOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Make + Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MaybeArrayOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                make_all::<T, A>(s).map(|made| MaybeArrayOf(Some(made)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeArrayOf(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            scalars_are!(MaybeArrayOf(None));
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Every element of `s`, made, in order. The first [`RUN`] elements are parsed on this
/// thread; from then on, each full run is made by a second thread (or here, if no thread
/// can be started) while this one parses the next.
fn make_all<'de, T: Make + Deserialize<'de>, A: de::SeqAccess<'de>>(
    mut s: A,
) -> Result<Vec<T::Made>, A::Error> {
    let make_run = |first: usize, run: Vec<T>, made: &mut Vec<T::Made>| {
        made.extend(run.into_iter().zip(first..).map(|(t, i)| t.make(i)));
    };
    let mut run: Vec<T> = Vec::with_capacity(RUN);
    while run.len() < RUN {
        match s.next_element::<T>()? {
            Some(t) => run.push(t),
            None => {
                let mut made = Vec::with_capacity(run.len());
                make_run(0, run, &mut made);
                return Ok(made);
            }
        }
    }
    std::thread::scope(|scope| {
        let (runs, received) = std::sync::mpsc::channel::<(usize, Vec<T>)>();
        let maker = std::thread::Builder::new()
            .name("parse".into())
            .spawn_scoped(scope, move || {
                let mut made = Vec::new();
                for (first, run) in received {
                    make_run(first, run, &mut made);
                }
                made
            });
        let mut here = Vec::new();
        let mut first = 0;
        let parsed = loop {
            if run.len() == RUN {
                let full = std::mem::replace(&mut run, Vec::with_capacity(RUN));
                // A maker that could not be started leaves the run to this thread.
                if let Err(std::sync::mpsc::SendError((first, full))) = runs.send((first, full)) {
                    make_run(first, full, &mut here);
                }
                first += RUN;
            }
            match s.next_element::<T>() {
                Ok(Some(t)) => run.push(t),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        drop(runs);
        let mut made = match maker {
            // The maker's panic is this parse's, as it would be on one thread.
            Ok(maker) => maker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => Vec::new(),
        };
        made.append(&mut here);
        make_run(first, run, &mut made);
        parsed.map(|()| made)
    })
}
