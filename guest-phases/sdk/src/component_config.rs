//! Component configurations (KubeletConfiguration, KubeProxyConfiguration) as kubeadm builds
//! them: its defaults for the cluster with the user's document from the config file laid over
//! them.

use serde_json::Value;

/// Lays `over` onto `base`: maps merge key by key, recursively; anything else in `over`
/// replaces what `base` has, except `null`, which leaves it (an unset field).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None if value.is_null() => {}
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_user_s_values_win_and_nulls_leave_defaults() {
        let mut base = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        merge(
            &mut base,
            &json!({"b": {"c": 20, "x": null}, "e": [9], "f": "new", "a": null}),
        );
        assert_eq!(
            base,
            json!({"a": 1, "b": {"c": 20, "d": 3}, "e": [9], "f": "new"})
        );
    }
}
