import CohortNN

/// What a worker needs to compute a micro-batch's gradient sum: the model without its weights,
/// the loss and its reduction. The coordinator sends it in WELCOME (binary, see the wire), so a
/// worker never reads a config.
package struct GradientSpec: Sendable, Equatable, Codable {
    package var model: ModelSpec
    package var loss: Loss
    package var reduction: Reduction

    package init(model: ModelSpec, loss: Loss, reduction: Reduction) {
        self.model = model; self.loss = loss; self.reduction = reduction
    }

    package func makeGradient() throws(LayerShapeError) -> MicroBatchGradient {
        MicroBatchGradient(model: try model.makeModel(), loss: loss, reduction: reduction)
    }
}
